//! `dipex mo …` and `dipex cpr-map …`: looking at MO's data through the backend.

use crate::Outcome;
use crate::context::{Context, today};
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use dipex_backend::{Backend, Query, Window};
use dipex_model::{Date, Kind, Object, Value};
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use uuid::Uuid;

#[derive(Subcommand)]
pub enum MoCommand {
    /// Every object, one JSON line each with its validity slices, sorted by type then uuid
    Dump(DumpArgs),
    /// The org unit tree at a date
    Tree {
        /// The date (default: today in Europe/Copenhagen)
        #[arg(long)]
        at: Option<Date>,
    },
    /// One object and the objects that refer to it
    Show { uuid: Uuid },
    /// Mirror the OS2mo at `mora.base`, all history, into the embedded store (`dipex.store` or
    /// `--store`); later pulls only read what changed
    Pull {
        /// Read every object again, not only those changed since the last pull
        #[arg(long)]
        full: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
}

#[derive(Args)]
pub struct DumpArgs {
    /// Only the slices valid on this date
    #[arg(long, conflicts_with = "history")]
    at: Option<Date>,
    /// All history and future (the default)
    #[arg(long)]
    history: bool,
    /// Only objects of this type (e.g. org_unit, person, engagement)
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
}

#[derive(Subcommand)]
pub enum CprMapCommand {
    /// Write `cpr;mo_uuid;ad_guid;sam_account_name` for every person in MO
    Export { file: PathBuf },
}

fn kinds(filter: Option<&str>) -> Result<Vec<Kind>> {
    let mut kinds: Vec<Kind> = match filter {
        None => Kind::ALL.to_vec(),
        Some(k) => vec![Kind::parse(k).with_context(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown type {k:?}; one of {}", names.join(", "))
        })?],
    };
    kinds.sort_by_key(|k| k.as_str());
    Ok(kinds)
}

fn dump(ctx: &Context, a: DumpArgs) -> Result<Outcome> {
    let backend = ctx.backend()?;
    let window = a.at.map_or(Window::All, Window::At);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut n = 0;
    for kind in kinds(a.kind.as_deref())? {
        let Format::Jsonl = a.format;
        for o in backend.read(&Query::all(kind).window(window))? {
            serde_json::to_writer(&mut out, &o.to_dump_json())?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    out.flush()?;
    tracing::info!("mo dump: {n} objects from {}", backend.describe());
    Ok(Outcome::Ok)
}

fn tree(ctx: &Context, at: Option<Date>) -> Result<Outcome> {
    let backend = ctx.backend()?;
    let day = at.unwrap_or_else(today);
    let units = backend.read(&Query::all(Kind::OrgUnit).at(day))?;
    let mut children: HashMap<Option<Uuid>, Vec<(&str, &str, Uuid)>> = HashMap::new();
    for o in &units {
        if let Value::OrgUnit(u) = &o.slices[0].value {
            children
                .entry(u.parent)
                .or_default()
                .push((&u.name, &u.user_key, o.uuid));
        }
    }
    for v in children.values_mut() {
        v.sort();
    }
    let known: std::collections::HashSet<Uuid> = units.iter().map(|o| o.uuid).collect();
    // Roots: no parent, or a parent not valid on the day.
    let mut roots: Vec<(&str, &str, Uuid)> = children
        .iter()
        .filter(|(p, _)| p.is_none_or(|p| !known.contains(&p)))
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    roots.sort();
    let mut stack: Vec<((&str, &str, Uuid), usize)> =
        roots.into_iter().rev().map(|r| (r, 0)).collect();
    let mut n = 0;
    while let Some(((name, key, uuid), level)) = stack.pop() {
        println!("{}{name} ({key}) {uuid}", "    ".repeat(level));
        n += 1;
        for c in children.get(&Some(uuid)).into_iter().flatten().rev() {
            stack.push((*c, level + 1));
        }
    }
    tracing::info!("mo tree: {n} units valid on {day}");
    Ok(Outcome::Ok)
}

/// The dump JSON of an object with any CPR number masked, for human eyes.
fn masked(o: &Object) -> serde_json::Value {
    let mut v = o.to_dump_json();
    if let Some(slices) = v.get_mut("validities").and_then(|s| s.as_array_mut()) {
        for (s, slice) in slices.iter_mut().zip(&o.slices) {
            if let Some(c) = slice.value.cpr() {
                s["cpr_number"] = serde_json::Value::String(c.masked());
            }
        }
    }
    v
}

fn show(ctx: &Context, uuid: Uuid) -> Result<Outcome> {
    let backend = ctx.backend()?;
    let mut found = None;
    for kind in Kind::ALL {
        if let Some(o) = backend.read(&Query::all(kind).uuids([uuid]))?.pop() {
            found = Some(o);
            break;
        }
    }
    let Some(o) = found else {
        bail!("no object with uuid {uuid}")
    };
    println!("{}", serde_json::to_string_pretty(&masked(&o))?);
    let related: Vec<Object> = match o.kind {
        Kind::Person => related(&*backend, |q| q.persons([uuid]))?,
        Kind::OrgUnit => {
            let mut r = related(&*backend, |q| q.org_units([uuid]))?;
            r.extend(backend.read(&Query::all(Kind::OrgUnit).parents([Some(uuid)]))?);
            r
        }
        _ => Vec::new(),
    };
    for r in &related {
        println!("{}", serde_json::to_string(&masked(r))?);
    }
    tracing::info!(
        "mo show: {} {uuid} and {} related objects",
        o.kind,
        related.len()
    );
    Ok(Outcome::Ok)
}

fn related(backend: &dyn Backend, filter: impl Fn(Query) -> Query) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for kind in [
        Kind::Engagement,
        Kind::Address,
        Kind::ItUser,
        Kind::Manager,
        Kind::Role,
        Kind::Association,
        Kind::Leave,
        Kind::Kle,
    ] {
        out.extend(backend.read(&filter(Query::all(kind)))?);
    }
    Ok(out)
}

pub fn run(ctx: &Context, c: MoCommand) -> Result<Outcome> {
    match c {
        MoCommand::Dump(a) => dump(ctx, a),
        MoCommand::Tree { at } => tree(ctx, at),
        MoCommand::Show { uuid } => show(ctx, uuid),
        MoCommand::Pull { full } => pull(ctx, full),
    }
}

fn pull(ctx: &Context, full: bool) -> Result<Outcome> {
    let mo = ctx
        .os2mo_source()?
        .context("mo pull mirrors an OS2mo: set mora.base (and its credentials)")?;
    let mut store = ctx.store()?;
    let reg = dipex_backend::Registration {
        at: jiff::Timestamp::now(),
        actor: "dipex mo pull".into(),
        note: mo.config().graphql_url(),
    };
    let pb = indicatif::ProgressBar::new(Kind::ALL.len() as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ({elapsed})")
            .expect("valid template"),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut progress = |e: dipex_backend::pull::PullEvent| match e {
        dipex_backend::pull::PullEvent::Kind {
            kind,
            index,
            incremental,
            ..
        } => {
            pb.set_position(index as u64);
            pb.set_message(format!(
                "{} {kind}",
                if incremental { "changes of" } else { "reading" }
            ));
        }
        dipex_backend::pull::PullEvent::Done { kind, counts: c } => pb.suspend(|| {
            if c.read + c.deleted > 0 {
                tracing::info!(
                    "{kind}: {} read, {} new, {} changed, {} deleted, {} unchanged",
                    c.read,
                    c.created,
                    c.replaced,
                    c.deleted,
                    c.unchanged
                );
            }
        }),
        dipex_backend::pull::PullEvent::Writing { ops } => {
            pb.set_position(Kind::ALL.len() as u64);
            pb.set_message(format!("writing {ops} changes"));
        }
    };
    let result = dipex_backend::pull::pull(
        &mo,
        &mut store,
        &reg,
        dipex_backend::pull::PullOptions { full },
        &mut progress,
    );
    pb.finish_and_clear();
    let c = result?;
    tracing::info!(
        "mo pull: {} new, {} changed, {} deleted, {} unchanged objects in {} ({} requests to OS2mo)",
        c.created,
        c.replaced,
        c.deleted,
        c.unchanged,
        store.path(),
        mo.requests()
    );
    Ok(Outcome::Ok)
}

pub fn cpr_map(ctx: &Context, c: CprMapCommand) -> Result<Outcome> {
    let CprMapCommand::Export { file } = c;
    let backend = ctx.backend()?;
    let persons = dipex_integrations::opus::run::persons(&*backend)?;
    let tmp = file.with_extension("tmp");
    let out =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let n = dipex_integrations::opus::cprmap::write_cpr_map(
        &persons,
        BufWriter::new(out),
        &file.display().to_string(),
    )?;
    std::fs::rename(&tmp, &file).with_context(|| format!("cannot write {}", file.display()))?;
    tracing::info!("cpr-map export: {n} persons written to {}", file.display());
    Ok(Outcome::Ok)
}
