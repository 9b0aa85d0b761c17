//! `dipex opus …`: the OPUS Løn import and its tools.

use crate::Outcome;
use crate::context::{Context, SystemEnv};
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use dipex_integrations::ad;
use dipex_integrations::dar;
use dipex_integrations::opus::map::Config;
use dipex_integrations::opus::run::{self, Event, ImportReport, Job, Mode};
use dipex_integrations::opus::state::RunDb;
use dipex_integrations::opus::{cprmap, diff, files, parse};
use dipex_integrations::transport::gcs::{GcsConfig, GcsCredentials};
use dipex_integrations::transport::smb::SmbConfig;
use dipex_integrations::transport::source::Source;
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

/// Where the dumps are (spec §2.2, in this priority): a Google Cloud Storage bucket
/// (`gcloud_bucket_name`), else an SMB share (`smb_host`), else a local folder
/// (`import.xml_path`). Remote dumps are downloaded into the spool folder as needed.
enum DumpSource {
    Local(PathBuf),
    Remote { source: Source, spool: PathBuf },
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn dump_source(ctx: &Context) -> Result<DumpSource> {
    let s = &ctx.settings;
    if let Some(bucket) = nonempty(&s.opus.gcloud_bucket_name) {
        // The only place dipex reads Google's variable: the key file of a service account.
        let credentials =
            match std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|v| !v.is_empty()) {
                Some(path) => GcsCredentials::KeyFile(PathBuf::from(path)),
                None => GcsCredentials::Metadata(s.opus.gcloud_metadata_url.clone()),
            };
        let mut cfg = GcsConfig::new(bucket, credentials);
        cfg.endpoint = s.opus.gcloud_endpoint.clone();
        return Ok(DumpSource::Remote {
            source: Source::Gcs(cfg),
            spool: spool_dir(ctx)?,
        });
    }
    if let Some(host) = nonempty(&s.opus.smb_host) {
        let user = nonempty(&s.opus.smb_user).context(
            "setting integrations.opus.smb_user is required with integrations.opus.smb_host",
        )?;
        let password = s.opus.smb_password.as_ref().map(|p| p.expose()).context(
            "setting integrations.opus.smb_password is required with integrations.opus.smb_host",
        )?;
        let cfg = SmbConfig::new(host, user, password)?;
        return Ok(DumpSource::Remote {
            source: Source::Smb(cfg),
            spool: spool_dir(ctx)?,
        });
    }
    Ok(DumpSource::Local(
        s.opus.xml_path.clone().context(
            "setting integrations.opus.import.xml_path is required: the folder with the ZLPE…_delta.xml dumps \
             (or integrations.opus.smb_host / gcloud_bucket_name for a share or a bucket)",
        )?,
    ))
}

/// The spool folder for remote dumps: `opus-dumps` next to the run database.
fn spool_dir(ctx: &Context) -> Result<PathBuf> {
    let db = run_db_path(ctx)?;
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty());
    Ok(dir.unwrap_or(Path::new(".")).join("opus-dumps"))
}

fn run_db_path(ctx: &Context) -> Result<&Path> {
    Ok(ctx.settings.opus.run_db()?)
}

/// The dumps, oldest first, wherever they are.
struct Listing {
    dumps: Vec<files::DumpFile>,
    /// For a remote source: the source and its dumps (same order as `dumps`).
    remote: Option<(Source, Vec<files::RemoteDump>)>,
    /// The folder, share or bucket, for messages.
    place: String,
}

impl Listing {
    /// Make sure these dumps are on local disk (downloads remote ones into the spool folder).
    fn fetch(&self, which: &[&files::DumpFile]) -> Result<()> {
        if let Some((source, remote)) = &self.remote {
            let wanted: Vec<&files::RemoteDump> = remote
                .iter()
                .filter(|r| which.iter().any(|d| d.name == r.dump.name))
                .collect();
            let n = files::fetch_dumps(source, &wanted)?;
            if n > 0 {
                tracing::info!("downloaded {n} dumps from {}", source.describe());
            }
        }
        Ok(())
    }

    /// After a successful run: remove spooled dumps older than the last imported one.
    fn prune(&self, last: Option<jiff::civil::DateTime>) -> Result<()> {
        if let (Some(_), Some(last), Some(first)) = (&self.remote, last, self.dumps.first())
            && let Some(spool) = first.path.parent()
        {
            for name in files::prune_spool(spool, last)? {
                tracing::debug!("removed {name} from the spool folder {}", spool.display());
            }
        }
        Ok(())
    }
}

fn list(ctx: &Context) -> Result<Listing> {
    let (dumps, skipped, remote, place) = match dump_source(ctx)? {
        DumpSource::Local(dir) => {
            let (dumps, skipped) = files::list_dumps(&dir)?;
            (dumps, skipped, None, dir.display().to_string())
        }
        DumpSource::Remote { source, spool } => {
            let (remote, skipped) = files::list_source_dumps(&source, &spool)?;
            let dumps = remote.iter().map(|r| r.dump.clone()).collect();
            let place = source.describe();
            (dumps, skipped, Some((source, remote)), place)
        }
    };
    for name in skipped {
        tracing::warn!("{place}: skipping {name:?}: not named ZLPE<YYYYMMDDhhmmss>_delta.xml");
    }
    Ok(Listing {
        dumps,
        remote,
        place,
    })
}

/// For `dipex check`: where the dumps are and how many (lists, downloads nothing).
pub fn describe_dumps(ctx: &Context) -> Result<String> {
    let (dumps, skipped, place) = match dump_source(ctx)? {
        DumpSource::Local(dir) => {
            let (d, s) = files::list_dumps(&dir)?;
            (d.len(), s.len(), dir.display().to_string())
        }
        DumpSource::Remote { source, spool } => {
            let (d, s) = files::list_source_dumps(&source, &spool)?;
            (d.len(), s.len(), source.describe())
        }
    };
    Ok(format!("{place}: {dumps} dumps, {skipped} other files"))
}

/// The last imported dump's time, from the run database if it exists.
fn last_imported(ctx: &Context) -> Result<Option<jiff::civil::DateTime>> {
    Ok(match RunDb::open_existing(run_db_path(ctx)?)? {
        Some(db) => db.last_imported()?,
        None => None,
    })
}

fn config(ctx: &Context) -> Result<Config> {
    let s = &ctx.settings;
    Ok(s.opus.mapping(s.municipality_name.as_deref())?)
}

/// The address register with its state database, and a description of it. Read-only (dry
/// runs) never creates or changes the file and caches in memory only.
pub fn register(ctx: &Context, read_only: bool) -> Result<(dar::Register, String)> {
    crate::dar::open(ctx, read_only)
}

fn cpr_map(ctx: &Context) -> Result<HashMap<dipex_model::Cpr, uuid::Uuid>> {
    let path = &ctx.settings.opus.cpr_uuid_map;
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
        if let Some(plan) = &d.plan {
            for op in &plan.ops {
                println!("{op}");
            }
        }
    }
    crate::finish(&r.summary(dry_run))
}

fn import(ctx: &Context, a: ImportArgs) -> Result<Outcome> {
    let cfg = config(ctx)?;
    let listing = list(ctx)?;
    let dumps = &listing.dumps;
    if dumps.is_empty() {
        bail!("no OPUS dumps in {}", listing.place);
    }
    let run_db = run_db_path(ctx)?;
    if listing.remote.is_some() {
        // Download only what this run reads: the dumps it imports and the last imported one
        // (the diff compares against it when the run database holds no digests of it).
        let last = last_imported(ctx)?;
        let mut needed: Vec<&files::DumpFile> = if a.only.is_some() {
            dumps.last().into_iter().collect()
        } else {
            let mut sel = run::select(dumps, last, mode_of(&a));
            if a.dry_run {
                sel.truncate(1);
            }
            sel
        };
        if a.only.is_none()
            && let Some(prev) = last.and_then(|l| dumps.iter().find(|d| d.timestamp == l))
        {
            needed.push(prev);
        }
        listing.fetch(&needed)?;
    }
    let directory = ad_directory(ctx, &cfg)?;
    let mut backend = ctx.backend()?;
    let (register, what) = register(ctx, a.dry_run)?;
    tracing::info!("{}; addresses from {what}", backend.describe());
    let cpr_map = cpr_map(ctx)?;
    let mode = mode_of(&a);
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
        Event::Unit { index, total, name } => {
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
            dumps,
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
            dumps,
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
            dumps,
            mode,
            &mut events,
        )
    };
    pb.finish_and_clear();
    crate::dar::log_stats(&register);
    let r = result.inspect_err(|_| register.discard())?;
    // The register's state (its cache) advances only after the import succeeded; a failed
    // run discards the answers it got (the next run asks again).
    if !a.dry_run {
        register.flush()?;
    }
    if r.dumps.is_empty() {
        tracing::info!("opus import: nothing to do, every dump is imported");
    }
    if !a.dry_run && a.only.is_none() {
        listing.prune(last_imported(ctx)?)?;
    }
    Ok(report(&r, a.dry_run))
}

fn mode_of(a: &ImportArgs) -> Mode {
    if a.next {
        Mode::Next
    } else if a.last {
        Mode::Last
    } else {
        Mode::All
    }
}

fn reimport(ctx: &Context, a: ReimportArgs) -> Result<Outcome> {
    let cfg = config(ctx)?;
    let listing = list(ctx)?;
    let dumps = &listing.dumps;
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
    let replayed: Vec<&files::DumpFile> = dumps.iter().filter(|d| d.timestamp >= since).collect();
    listing.fetch(&replayed)?;
    let pb = progress();
    let mut events = |e: Event<'_>| {
        if let Event::Unit { index, total, name } = e {
            pb.set_length(total as u64);
            pb.set_position(index as u64);
            pb.set_message(name.to_string());
        }
    };
    let result = run::reimport(
        &mut *backend,
        &job,
        &mut SystemEnv,
        dumps,
        &a.employee,
        since,
        &mut events,
    );
    pb.finish_and_clear();
    let result = result.inspect_err(|_| register.discard())?;
    // The register's state (its cache) advances only after the import succeeded; a failed
    // run discards the answers it got (the next run asks again).
    if !a.dry_run {
        register.flush()?;
    }
    Ok(report(&result, a.dry_run))
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
    let listing = list(ctx)?;
    let dumps = &listing.dumps;
    let last = match &ctx.settings.opus.run_db {
        Some(p) => RunDb::open_existing(p)?
            .map(|db| db.last_imported())
            .transpose()?
            .flatten(),
        None => None,
    };
    for d in dumps {
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
    tracing::info!("opus files: {} dumps in {}", dumps.len(), listing.place);
    Ok(Outcome::Ok)
}

fn tree(ctx: &Context, dump: Option<PathBuf>) -> Result<Outcome> {
    let path = match dump {
        Some(p) if p.exists() => p,
        Some(p) => {
            let listing = list(ctx)?;
            let name = p.to_string_lossy();
            let d = listing
                .dumps
                .iter()
                .find(|d| d.name == name || files::dump_name(&name) == d.name)
                .with_context(|| format!("no dump {name} in {}", listing.place))?;
            listing.fetch(&[d])?;
            d.path.clone()
        }
        None => newest(ctx)?.path,
    };
    let d = parse::parse_file(&path)?;
    diff::Tree::check(&d, &path.display().to_string())?;
    for l in diff::tree_lines(&d) {
        println!("{l}");
    }
    tracing::info!("opus tree: {} units", d.units.len());
    Ok(Outcome::Ok)
}

/// The newest dump, on local disk.
fn newest(ctx: &Context) -> Result<files::DumpFile> {
    let listing = list(ctx)?;
    let newest = listing
        .dumps
        .last()
        .with_context(|| format!("no OPUS dumps in {}", listing.place))?;
    listing.fetch(&[newest])?;
    Ok(newest.clone())
}

fn check_dar(ctx: &Context) -> Result<Outcome> {
    let newest = newest(ctx)?;
    let d = parse::parse_file(&newest.path)?;
    let tree = diff::Tree::check(&d, &newest.name)?;
    let (register, what) = register(ctx, false)?;
    let problems = run::check_dar(&d, &tree, &ctx.settings.opus.filter_ids, &register);
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
