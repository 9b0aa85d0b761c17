//! `dipex opus …`: the OPUS Løn import and its tools.

use crate::Outcome;
use crate::context::{Context, SystemEnv};
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use dipex_integrations::ad;
use dipex_integrations::dar::{self, AddressRegister, CachedRegister, DarSettings};
use dipex_integrations::opus::map::Config;
use dipex_integrations::opus::run::{self, Event, ImportReport, Job, Mode};
use dipex_integrations::opus::state::RunDb;
use dipex_integrations::opus::{cprmap, diff, files, parse};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Subcommand)]
pub enum OpusCommand {
    /// Import the pending dumps (all of them, oldest first, unless told otherwise)
    Import(ImportArgs),
    /// Show the run history and whether the next run may start
    Status,
    /// Remove a `Running` row left by a run that did not finish
    Unblock,
    /// List the dumps and which of them are imported
    Files,
    /// Print the unit tree of a dump (default: the newest)
    Tree { dump: Option<PathBuf> },
    /// Look up the address of every unit of the newest dump and list those that fail
    CheckDar,
    /// Replay one employment through the old dumps
    Reimport(ReimportArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// Show what would change; write nothing anywhere
    #[arg(long)]
    dry_run: bool,
    /// Every pending dump, oldest first (the default)
    #[arg(long, group = "mode")]
    all: bool,
    /// Only the oldest pending dump
    #[arg(long, group = "mode")]
    next: bool,
    /// Only the newest dump, skipping those in between
    #[arg(long, group = "mode")]
    last: bool,
    /// Only the unit or employment with this OPUS id (does not advance the run history)
    #[arg(long, value_name = "OPUS_ID")]
    only: Option<String>,
}

#[derive(Args)]
pub struct ReimportArgs {
    /// The employment number (or unit id)
    #[arg(long)]
    employee: String,
    /// How many days of dumps to replay
    #[arg(long, default_value_t = 1000)]
    days: i64,
    /// Show what would change; write nothing anywhere
    #[arg(long)]
    dry_run: bool,
}

fn xml_path(ctx: &Context) -> Result<&Path> {
    let s = &ctx.settings;
    if s.opus_smb_host.is_some() || s.opus_gcloud_bucket_name.is_some() {
        bail!(
            "integrations.opus.smb_host / gcloud_bucket_name: SMB and Google Cloud Storage sources are not implemented yet (issue 7); use integrations.opus.import.xml_path"
        );
    }
    s.opus_xml_path
        .as_deref()
        .context("setting integrations.opus.import.xml_path is required: the folder with the ZLPE…_delta.xml dumps")
}

fn run_db_path(ctx: &Context) -> Result<&Path> {
    ctx.settings.opus_run_db.as_deref().context(
        "setting integrations.opus.import.run_db is required: the SQLite file with the run history",
    )
}

fn list(ctx: &Context) -> Result<Vec<files::DumpFile>> {
    let dir = xml_path(ctx)?;
    let (dumps, skipped) = files::list_dumps(dir)?;
    for name in skipped {
        tracing::warn!(
            "{}: skipping {name:?}: not named ZLPE<YYYYMMDDhhmmss>_delta.xml",
            dir.display()
        );
    }
    Ok(dumps)
}

fn config(ctx: &Context) -> Result<Config> {
    let s = &ctx.settings;
    let name = s
        .municipality_name
        .clone()
        .context("setting municipality.name is required: it seeds the uuid of every OPUS unit")?;
    Ok(Config {
        unit_user_key: s.opus_unit_user_key.clone(),
        filter_ids: s.opus_filter_ids.clone(),
        skip_employees: s.opus_skip_employees,
        skip_email: s.opus_skip_employee_email,
        skip_phone: s.opus_skip_employee_phone,
        skip_address: s.opus_skip_employee_address,
        primary_order: s.opus_eng_types_primary_order.clone(),
        ..Config::new(&name)
    })
}

/// The address register with its cache in the run database, and a description of it.
/// Read-only (dry runs, `check`) never creates or changes the file and caches in memory only.
pub fn register(
    ctx: &Context,
    read_only: bool,
) -> Result<(CachedRegister<Box<dyn AddressRegister>>, String)> {
    register_in(ctx, run_db_path(ctx)?, read_only)
}

/// The address register with its cache in `cache` (a SQLite file).
pub fn register_at(
    ctx: &Context,
    cache: &std::path::Path,
) -> Result<(CachedRegister<Box<dyn AddressRegister>>, String)> {
    register_in(ctx, cache, false)
}

fn register_in(
    ctx: &Context,
    cache: &std::path::Path,
    read_only: bool,
) -> Result<(CachedRegister<Box<dyn AddressRegister>>, String)> {
    let s = &ctx.settings;
    let settings = DarSettings {
        base_url: s.dar_base_url.clone(),
        address_file: s.dar_address_file.clone(),
        timeout: Duration::from_secs(s.dar_timeout_seconds),
    };
    let inner = dar::register_from_settings(&settings)?;
    let what = describe_register(&settings);
    Ok((CachedRegister::new(inner, cache, read_only)?, what))
}

fn describe_register(settings: &DarSettings) -> String {
    match (&settings.address_file, &settings.base_url) {
        (Some(f), _) => format!("offline address file {}", f.display()),
        (None, Some(u)) => format!("DAWA-compatible service {u}"),
        (None, None) => format!("DAWA-compatible service {}", dar::DEFAULT_BASE_URL),
    }
}

fn cpr_map(ctx: &Context) -> Result<HashMap<dipex_model::Cpr, uuid::Uuid>> {
    let path = &ctx.settings.opus_cpr_uuid_map;
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open cpr map {}", path.display()))?;
    let map = cprmap::read_cpr_map(std::io::BufReader::new(file), &path.display().to_string())?;
    tracing::info!("cpr map {}: {} persons", path.display(), map.len());
    Ok(map)
}

/// The Active Directory accounts (`integrations.ad`), read with one search before anything is
/// written, so an unreachable directory stops the run with nothing changed.
fn ad_directory(ctx: &Context, cfg: &Config) -> Result<Option<ad::Directory>> {
    let Some(s) = &ctx.settings.ad else {
        return Ok(None);
    };
    if cfg.skip_employees {
        return Ok(None);
    }
    if s.ignored_configs > 0 {
        tracing::warn!(
            "integrations.ad lists {} AD configurations; dipex reads the first only",
            s.ignored_configs + 1
        );
    }
    let d = ad::ldap::read_directory(s)
        .context("reading Active Directory (integrations.ad) failed; nothing was imported")?;
    for w in d.warnings() {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "Active Directory: {} accounts by CPR ({} entries in {} pages)",
        d.len(),
        d.stats.entries,
        d.stats.pages
    );
    Ok(Some(d))
}

fn progress() -> ProgressBar {
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})")
            .expect("valid template"),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

fn report(r: &ImportReport, dry_run: bool) -> Outcome {
    for d in &r.dumps {
        for w in &d.warnings {
            tracing::warn!("{}", w.render(&d.name));
        }
        for rej in &d.rejected {
            tracing::warn!("rejected: {}", rej.render(&d.name));
        }
        if let Some(plan) = &d.plan {
            for op in &plan.ops {
                println!("{op}");
            }
        }
        let ch = &d.changes;
        tracing::info!(
            "{}: {} units changed, {} vanished, {} filtered; {} employments changed, {} left, {} cancelled",
            d.name,
            ch.units.len(),
            ch.vanished_units.len(),
            ch.filtered_units.len(),
            ch.employees.len(),
            ch.leaves.len(),
            ch.cancelled.len()
        );
    }
    for n in &r.not_processed {
        tracing::info!("dry run: {n} is pending too; a dry run shows the next dump only");
    }
    let c = r.counts();
    let rejected = r.rejected();
    tracing::info!(
        "opus import{}: {} dumps, {} created, {} updated, {} terminated, {} deleted, {} rejected",
        if dry_run {
            " (dry run, nothing written)"
        } else {
            ""
        },
        r.dumps.len(),
        c.created,
        c.updated,
        c.terminated,
        c.deleted,
        rejected
    );
    if rejected > 0 {
        Outcome::Rejected
    } else {
        Outcome::Ok
    }
}

fn import(ctx: &Context, a: ImportArgs) -> Result<Outcome> {
    let cfg = config(ctx)?;
    let dumps = list(ctx)?;
    if dumps.is_empty() {
        bail!("no OPUS dumps in {}", xml_path(ctx)?.display());
    }
    let directory = ad_directory(ctx, &cfg)?;
    let mut backend = ctx.backend()?;
    let run_db = run_db_path(ctx)?;
    let (register, what) = register(ctx, a.dry_run)?;
    tracing::info!("{}; addresses from {what}", backend.describe());
    let cpr_map = cpr_map(ctx)?;
    let mode = if a.next {
        Mode::Next
    } else if a.last {
        Mode::Last
    } else {
        Mode::All
    };
    let job = Job {
        cfg: &cfg,
        register: &register,
        cpr_map: &cpr_map,
        ad: directory.as_ref(),
        dry_run: a.dry_run,
        only: a.only.as_deref(),
    };
    let pb = progress();
    let mut events = |e: Event<'_>| match e {
        Event::Dump { index, total, name } => {
            pb.set_length(total as u64);
            pb.set_position(index as u64);
            pb.set_message(name.to_string());
        }
        Event::Stage(s) => pb.set_message(format!(
            "{}: {s}",
            pb.message().split(':').next().unwrap_or("")
        )),
    };
    let mut env = SystemEnv;
    let result = if let Some(only) = a.only.as_deref() {
        // A single object: compared with nothing, no run history written.
        let newest = dumps.last().expect("not empty").clone();
        let since = newest.timestamp;
        run::reimport(
            &mut *backend,
            &job,
            &mut env,
            &dumps,
            only,
            since,
            &mut events,
        )
    } else if a.dry_run {
        let mut db = RunDb::open_existing(run_db)?;
        run::import(
            &mut *backend,
            db.as_mut(),
            &job,
            &mut env,
            &dumps,
            mode,
            &mut events,
        )
    } else {
        let mut db = RunDb::open(run_db)?;
        run::import(
            &mut *backend,
            Some(&mut db),
            &job,
            &mut env,
            &dumps,
            mode,
            &mut events,
        )
    };
    pb.finish_and_clear();
    if !a.dry_run {
        register.flush()?;
    }
    let r = result?;
    if r.dumps.is_empty() {
        tracing::info!("opus import: nothing to do, every dump is imported");
    }
    Ok(report(&r, a.dry_run))
}

fn reimport(ctx: &Context, a: ReimportArgs) -> Result<Outcome> {
    let cfg = config(ctx)?;
    let dumps = list(ctx)?;
    let directory = ad_directory(ctx, &cfg)?;
    let mut backend = ctx.backend()?;
    let (register, _) = register(ctx, a.dry_run)?;
    let cpr_map = cpr_map(ctx)?;
    let job = Job {
        cfg: &cfg,
        register: &register,
        cpr_map: &cpr_map,
        ad: directory.as_ref(),
        dry_run: a.dry_run,
        only: None,
    };
    let since = jiff::Zoned::now()
        .datetime()
        .checked_sub(jiff::Span::new().days(a.days))?;
    let pb = progress();
    let mut events = |e: Event<'_>| {
        if let Event::Dump { index, total, name } = e {
            pb.set_length(total as u64);
            pb.set_position(index as u64);
            pb.set_message(name.to_string());
        }
    };
    let result = run::reimport(
        &mut *backend,
        &job,
        &mut SystemEnv,
        &dumps,
        &a.employee,
        since,
        &mut events,
    );
    pb.finish_and_clear();
    if !a.dry_run {
        register.flush()?;
    }
    Ok(report(&result?, a.dry_run))
}

fn status(ctx: &Context) -> Result<Outcome> {
    let path = run_db_path(ctx)?;
    match RunDb::open_existing(path)? {
        None => {
            println!("(True, 'Status ok')");
            tracing::info!(
                "opus status: {} does not exist yet: nothing imported",
                path.display()
            );
        }
        Some(db) => {
            for l in db.overview()? {
                println!("{l}");
            }
        }
    }
    Ok(Outcome::Ok)
}

fn unblock(ctx: &Context) -> Result<Outcome> {
    let path = run_db_path(ctx)?;
    if !path.exists() {
        println!("Status ok, no delete");
        return Ok(Outcome::Ok);
    }
    let db = RunDb::open(path)?;
    println!("{}", db.unblock()?);
    Ok(Outcome::Ok)
}

fn files_cmd(ctx: &Context) -> Result<Outcome> {
    let dumps = list(ctx)?;
    let last = match &ctx.settings.opus_run_db {
        Some(p) => RunDb::open_existing(p)?
            .map(|db| db.last_imported())
            .transpose()?
            .flatten(),
        None => None,
    };
    for d in &dumps {
        let state = if last.is_some_and(|l| d.timestamp <= l) {
            "imported"
        } else {
            "pending"
        };
        println!(
            "{}  {}  {state}",
            d.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            d.name
        );
    }
    tracing::info!("opus files: {} dumps", dumps.len());
    Ok(Outcome::Ok)
}

fn tree(ctx: &Context, dump: Option<PathBuf>) -> Result<Outcome> {
    let path = match dump {
        Some(p) if p.exists() => p,
        Some(p) => xml_path(ctx)?.join(&p),
        None => list(ctx)?.pop().context("no OPUS dumps")?.path,
    };
    let d = parse::parse_file(&path)?;
    diff::Tree::check(&d, &path.display().to_string())?;
    for l in diff::tree_lines(&d) {
        println!("{l}");
    }
    tracing::info!("opus tree: {} units", d.units.len());
    Ok(Outcome::Ok)
}

fn check_dar(ctx: &Context) -> Result<Outcome> {
    let newest = list(ctx)?.pop().context("no OPUS dumps")?;
    let d = parse::parse_file(&newest.path)?;
    let tree = diff::Tree::check(&d, &newest.name)?;
    let (register, what) = register(ctx, false)?;
    let problems = run::check_dar(&d, &tree, &ctx.settings.opus_filter_ids, &register);
    register.flush()?;
    for p in &problems {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            p.id, p.name, p.street, p.zip, p.reason
        );
    }
    tracing::info!(
        "opus check-dar: {} units in {}, {} without a DAR match ({what})",
        d.units.len(),
        newest.name,
        problems.len()
    );
    Ok(if problems.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Rejected
    })
}

pub fn run(ctx: &Context, c: OpusCommand) -> Result<Outcome> {
    match c {
        OpusCommand::Import(a) => import(ctx, a),
        OpusCommand::Status => status(ctx),
        OpusCommand::Unblock => unblock(ctx),
        OpusCommand::Files => files_cmd(ctx),
        OpusCommand::Tree { dump } => tree(ctx, dump),
        OpusCommand::CheckDar => check_dar(ctx),
        OpusCommand::Reimport(a) => reimport(ctx, a),
    }
}
