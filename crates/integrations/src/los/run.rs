//! One LOS import run (`specs/los.md` §1): read the state file, list the source, plan the files
//! (modified after the last successful run; STAM, org units, persons, managers, each kind by
//! file date), assert the seed, then for every file: read, parse, look up postal addresses,
//! map to facts, reconcile with MO and apply (one plan per file). The state file is written
//! only when every file went through; a failed run leaves it, so the next run processes the
//! same files again (reconcile makes that safe).

use super::files::{self, FileKind, Planned};
use super::map::{self, Ctx, Mapped};
use super::parse::{self, Rows};
use super::{seed, state};
use crate::dar::{AddressRegister, DarError};
use crate::opus::run::Env;
use crate::transport::source::{Source, SourceError};
use dipex_backend::{Backend, BackendError, Query, Refused, Registration};
use dipex_model::{Cpr, Date, Fact, Kind, Object, Plan, reconcile};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("reading the files: {0}")]
    Source(#[from] SourceError),
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error("MO: {0}")]
    Backend(#[from] BackendError),
    #[error("the address register: {0}")]
    Dar(#[from] DarError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("{file}: {source}")]
    Write {
        file: String,
        source: std::io::Error,
    },
}

/// What a run needs.
pub struct Job<'a> {
    pub source: &'a Source,
    pub register: &'a dyn AddressRegister,
    pub state_file: &'a Path,
    pub azid_system: Uuid,
    /// `--from-date`: import files modified since this day (the state file is not read).
    pub from_date: Option<Date>,
    pub dry_run: bool,
}

/// What one file did.
#[derive(Debug, Default)]
pub struct FileReport {
    pub name: String,
    pub rows: usize,
    pub plan: Plan,
    pub rejected: Vec<(u64, String)>,
    /// Operations OS2mo refused (or did not get because they depend on a refused object).
    pub refused: Vec<Refused>,
    pub warnings: Vec<String>,
    pub dar_failures: usize,
}

#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<FileReport>,
    pub seed: Plan,
    pub unrecognised: Vec<String>,
    /// Files written with the DAR failures.
    pub dar_lists: Vec<PathBuf>,
}

impl Report {
    pub fn rejected(&self) -> usize {
        self.files
            .iter()
            .map(|f| f.rejected.len() + f.refused.len())
            .sum()
    }

    /// Operations OS2mo refused, over all files.
    pub fn refused(&self) -> usize {
        self.files.iter().map(|f| f.refused.len()).sum()
    }
}

fn reg(env: &dyn Env, note: &str) -> Registration {
    Registration {
        at: env.timestamp(),
        actor: "dipex los import".into(),
        note: note.into(),
    }
}

/// The current MO objects the facts concern, by uuid.
fn current_of(
    backend: &dyn Backend,
    facts: &[Fact],
    kinds: &HashMap<Uuid, Kind>,
) -> Result<HashMap<Uuid, Object>, BackendError> {
    let mut by_kind: BTreeMap<Kind, Vec<Uuid>> = BTreeMap::new();
    for f in facts {
        if let Some(k) = kinds.get(&f.uuid()) {
            by_kind.entry(*k).or_default().push(f.uuid());
        }
    }
    let mut out = HashMap::new();
    for (kind, uuids) in by_kind {
        for o in backend.read(&Query::all(kind).uuids(uuids))? {
            out.insert(o.uuid, o);
        }
    }
    Ok(out)
}

fn fact_kinds(facts: &[Fact]) -> HashMap<Uuid, Kind> {
    facts
        .iter()
        .filter_map(|f| match f {
            Fact::State { uuid, timeline, .. } => timeline.first().map(|s| (*uuid, s.value.kind())),
            Fact::End { uuid, kind, .. } | Fact::Delete { uuid, kind } => Some((*uuid, *kind)),
        })
        .collect()
}

/// Reconcile facts with MO and apply them (or only plan them in a dry run). Returns the plan and
/// the operations OS2mo refused.
fn write(
    backend: &mut dyn Backend,
    facts: Vec<Fact>,
    dry_run: bool,
    reg: &Registration,
) -> Result<(Plan, Vec<Refused>), BackendError> {
    let kinds = fact_kinds(&facts);
    let current = current_of(backend, &facts, &kinds)?;
    let plan = reconcile(facts, &current);
    let mut refused = Vec::new();
    if !dry_run && !plan.is_empty() {
        refused = backend.apply(plan.clone(), reg)?.refused;
    }
    Ok((plan, refused))
}

/// Persons in MO by CPR, for the CPR numbers of a file.
fn persons_by_cpr(
    backend: &dyn Backend,
    cprs: impl IntoIterator<Item = Cpr>,
) -> Result<HashMap<Cpr, Uuid>, BackendError> {
    let cprs: HashSet<Cpr> = cprs.into_iter().collect();
    let mut out = HashMap::new();
    for o in backend.read(&Query::all(Kind::Person).cpr_numbers(cprs))? {
        if let Some(c) = o.last().value.cpr() {
            out.insert(c.clone(), o.uuid);
        }
    }
    Ok(out)
}

/// DAR answers for the distinct non-empty postal addresses of org unit rows.
fn dar_answers(
    register: &dyn AddressRegister,
    rows: &[parse::OrgUnitRow],
) -> Result<HashMap<String, Option<Uuid>>, DarError> {
    let mut out = HashMap::new();
    for r in rows {
        let Some(text) = r
            .post_address
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            continue;
        };
        if out.contains_key(text) {
            continue;
        }
        let split = crate::plan2learn::address::split(text);
        let answer = if split.postcode.is_empty() {
            None
        } else {
            register.lookup(&split.street, &split.postcode)?.uuid()
        };
        out.insert(text.to_string(), answer);
    }
    Ok(out)
}

/// One import run.
pub fn import(
    backend: &mut dyn Backend,
    job: &Job<'_>,
    env: &mut dyn Env,
) -> Result<Report, RunError> {
    let started = env.timestamp();
    let today = env.now().date();
    let last = match job.from_date {
        Some(d) => d
            .at(0, 0, 0, 0)
            .in_tz("Europe/Copenhagen")
            .ok()
            .map(|z| z.timestamp()),
        None => state::read(job.state_file)?,
    };
    let listing: Vec<files::RemoteFile> = job
        .source
        .list()?
        .into_iter()
        .map(|f| files::RemoteFile {
            name: f.name,
            modified: f.modified,
        })
        .collect();
    let planned = files::plan(&listing, last);
    let mut report = Report {
        unrecognised: planned.unrecognised.clone(),
        ..Report::default()
    };

    // Seed: the organisation and default facets when MO has none; classes and AZ every run.
    let org_exists = !backend.read(&Query::all(Kind::Organisation))?.is_empty();
    let (seed, refused) = write(
        backend,
        seed::facts(org_exists, job.azid_system),
        job.dry_run,
        &reg(env, "seed"),
    )?;
    report.seed = seed;
    if !refused.is_empty() {
        report.files.push(FileReport {
            name: "(seed)".into(),
            refused,
            ..FileReport::default()
        });
    }

    for file in &planned.files {
        let fr = import_file(backend, job, env, file, today, &mut report.dar_lists)?;
        report.files.push(fr);
    }
    // A refused object is tried again next run: the files are read again (reconcile makes that
    // safe), so the state only advances when OS2mo took everything.
    if !job.dry_run && report.refused() == 0 {
        state::write(job.state_file, started)?;
    }
    Ok(report)
}

fn import_file(
    backend: &mut dyn Backend,
    job: &Job<'_>,
    env: &mut dyn Env,
    file: &Planned,
    today: Date,
    dar_lists: &mut Vec<PathBuf>,
) -> Result<FileReport, RunError> {
    let bytes = job.source.read(&file.name)?;
    let (text, warning) = parse::decode(&file.name, &bytes);
    let rows = parse::parse(file.kind, &file.name, &text)?;
    let file_date = file.file_date.map(|d| d.date()).unwrap_or(today);
    let mut fr = FileReport {
        name: file.name.clone(),
        rows: rows.len(),
        ..FileReport::default()
    };
    if let Some(w) = warning {
        fr.warnings.push(w.message);
    }
    // What MO holds for the rows of this file, and the persons of its CPR numbers.
    let kind = |k: Kind, ids: Vec<Uuid>| -> Result<HashMap<Uuid, Object>, BackendError> {
        Ok(backend
            .read(&Query::all(k).uuids(ids))?
            .into_iter()
            .map(|o| (o.uuid, o))
            .collect())
    };
    let manager_ids =
        |persons: &HashMap<Cpr, Uuid>, rows: &mut dyn Iterator<Item = (Uuid, &Cpr)>| -> Vec<Uuid> {
            rows.filter_map(|(unit, cpr)| persons.get(cpr).map(|p| super::uuids::manager(unit, *p)))
                .collect()
        };
    let mut dar = HashMap::new();
    let mut persons = HashMap::new();
    let current = match &rows {
        Rows::Classes(..) | Rows::ItSystems(_) => HashMap::new(),
        Rows::OrgUnits(r) => {
            dar = dar_answers(job.register, r)?;
            kind(Kind::OrgUnit, r.iter().map(|x| x.uuid).collect())?
        }
        Rows::Persons(r) => {
            persons = persons_by_cpr(backend, r.iter().map(|x| x.cpr.clone()))?;
            kind(Kind::Person, persons.values().copied().collect())?
        }
        Rows::PersonEnds(r) => kind(Kind::Engagement, r.iter().map(|x| x.engagement).collect())?,
        Rows::Managers(r) => {
            persons = persons_by_cpr(backend, r.iter().map(|x| x.cpr.clone()))?;
            kind(
                Kind::Manager,
                manager_ids(&persons, &mut r.iter().map(|x| (x.org_unit, &x.cpr))),
            )?
        }
        Rows::ManagerEnds(r) => {
            persons = persons_by_cpr(backend, r.iter().map(|x| x.cpr.clone()))?;
            kind(
                Kind::Manager,
                manager_ids(&persons, &mut r.iter().map(|x| (x.org_unit, &x.cpr))),
            )?
        }
    };
    let ctx = Ctx {
        current: &current,
        persons: &persons,
        file_date,
        today,
        azid_system: job.azid_system,
        dar: &dar,
    };
    let mapped: Mapped = match &rows {
        Rows::Classes(kind, r) => {
            map::stam_classes(*kind, r, &backend.read(&Query::all(Kind::Class))?, today)
        }
        Rows::ItSystems(r) => map::stam_itsystems(r, &backend.read(&Query::all(Kind::ItSystem))?),
        Rows::OrgUnits(r) => map::org_units(r, file.kind == FileKind::OrgEdit, &ctx),
        Rows::Persons(r) => map::persons(r, file.kind == FileKind::PersonEdit, &ctx, &mut || {
            env.new_uuid()
        }),
        Rows::PersonEnds(r) => map::person_ends(r, &ctx),
        Rows::Managers(r) => map::managers(r, file.kind == FileKind::ManagerEdit, &ctx),
        Rows::ManagerEnds(r) => map::manager_ends(r, &ctx),
    };
    fr.rejected = mapped.rejected;
    fr.warnings.extend(mapped.warnings);
    fr.dar_failures = mapped.dar_failures.len();
    if !mapped.dar_failures.is_empty() && !job.dry_run {
        let dir = job
            .state_file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let path = dir.join(files::dar_failure_file_name(&file.name));
        let list = parse::write_dar_failures(&mapped.dar_failures);
        std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&path, &list))
            .map_err(|source| RunError::Write {
                file: path.display().to_string(),
                source,
            })?;
        dar_lists.push(path);
        // Also onto the server, for LOS's people; a server that refuses is only a warning.
        let name = files::dar_failure_file_name(&file.name);
        if let Err(e) = job.source.put("DARfejlliste", &name, list.as_bytes()) {
            fr.warnings.push(format!(
                "the DAR failure list could not be put into DARfejlliste on {}: {e}",
                job.source.describe()
            ));
        }
    }
    (fr.plan, fr.refused) = write(backend, mapped.facts, job.dry_run, &reg(env, &file.name))?;
    Ok(fr)
}
