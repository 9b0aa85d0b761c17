//! One LOS import run (`specs/los.md` §1): read the state file, list the source, plan the files
//! (modified after the last successful run; STAM, org units, persons, managers, each kind by
//! file date), assert the seed, then for every file: read, parse, look up postal addresses,
//! map to facts, reconcile with MO and apply (one plan per file). The state file is written
//! only when every file went through; a failed run leaves it, so the next run processes the
//! same files again (reconcile makes that safe).
//!
//! A postal address whose lookup *failed* (register down, hanging, 5xx) is not a DAR miss and
//! never lands on the failure list: the unit's postal address rows of that file are kept as
//! pending in the register's state database (importer `los`, object = `<unit uuid> <file>`, so
//! two files whose lookups failed for the same unit are both kept), and the next run maps them
//! first, file by file in file-date order, before its own files, whether or not any file
//! mentions the unit again. A later file that settles the unit's postal address replaces all
//! of its pending rows.

use super::files::{self, FileKind, Planned};
use super::map::{self, Ctx};
use super::parse::{self, Rows};
use super::{seed, state};
use crate::common::env::Env;
use crate::common::report::{Problem, Summary};
use crate::dar::{self, AddressRegister, DarError, Lookup, Pending};
use crate::job::{Event, Mapped, Written};
use crate::transport::source::{Source, SourceError};
use dipex_backend::{Backend, BackendError, Query};
use dipex_model::{Cpr, Date, Fact, Kind, Object, Plan};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("reading the files: {0}")]
    Source(SourceError),
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error("MO: {0}")]
    Backend(BackendError),
    #[error("the address register: {0}")]
    Dar(DarError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("{file}: {error}")]
    Write { file: String, error: std::io::Error },
    /// A file failed after the files before it in the same run were imported (the state file
    /// does not move: a re-run reads them again, which changes nothing).
    #[error(transparent)]
    AfterImported(crate::job::AfterImported<RunError>),
}

impl RunError {
    /// Whether part of the run's work was written before it failed (exit code 3).
    pub fn partly_applied(&self) -> bool {
        match self {
            RunError::AfterImported(_) => true,
            RunError::Backend(b) => b.partly_applied(),
            _ => false,
        }
    }
}

// The wrapped errors are shown in the message, so they are not also given as `source()`:
// `{:#}` (anyhow) would print them twice.
impl From<SourceError> for RunError {
    fn from(e: SourceError) -> RunError {
        RunError::Source(e)
    }
}

impl From<BackendError> for RunError {
    fn from(e: BackendError) -> RunError {
        RunError::Backend(e)
    }
}

impl From<DarError> for RunError {
    fn from(e: DarError) -> RunError {
        RunError::Dar(e)
    }
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
    /// Rows that were not imported, each with its file, line and reason.
    pub rejected: Vec<Problem>,
    /// Operations OS2mo refused (or did not get because they depend on a refused object), each
    /// with the object's uuid.
    pub refused: Vec<Problem>,
    pub warnings: Vec<Problem>,
    pub dar_failures: usize,
    /// Units whose postal address lookup failed (pending).
    pub dar_pending: usize,
}

#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<FileReport>,
    pub seed: Plan,
    pub unrecognised: Vec<String>,
    /// Files written with the DAR failures.
    pub dar_lists: Vec<PathBuf>,
    /// Units whose postal address is pending after the run (the register failed).
    pub pending: usize,
    /// Pending units of earlier runs settled by this run.
    pub pending_resolved: usize,
}

/// The pending object key of a unit's postal address rows from `file`.
fn pending_key(unit: Uuid, file: &str) -> String {
    format!("{unit} {file}")
}

/// The unit a pending object key names (keys of older versions are the unit alone).
fn pending_unit(key: &str) -> &str {
    key.split(' ').next().unwrap_or(key)
}

/// The importer name of LOS's pending address lookups.
pub const PENDING_IMPORTER: &str = "los";

/// What is kept for a pending unit: its rows and the file they came from.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Stored {
    file: String,
    file_date: Date,
    edit: bool,
    address: map::PendingAddress,
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

    /// The run in the one report shape: every warning, rejected row and refused operation as
    /// a [`Problem`], a note per file, and the counts.
    pub fn summary(&self, dry_run: bool) -> Summary {
        let mut s = Summary::new("los import", dry_run);
        for name in &self.unrecognised {
            s.problems.push(Problem::warning(
                name.as_str(),
                "not a LOS file name; skipped",
            ));
        }
        let mut counts = dipex_model::plan::Counts::default();
        for f in &self.files {
            let file = f.name.as_str();
            s.problems.extend(f.warnings.iter().cloned());
            s.problems.extend(f.refused.iter().cloned());
            s.problems.extend(f.rejected.iter().cloned());
            let c = f.plan.counts();
            counts.created += c.created;
            counts.updated += c.updated;
            counts.terminated += c.terminated;
            counts.deleted += c.deleted;
            s.notes.push(format!(
                "{file}: {} rows, {} changes, {} DAR misses, {} postal addresses pending",
                f.rows,
                f.plan.len(),
                f.dar_failures,
                f.dar_pending
            ));
        }
        for p in &self.dar_lists {
            s.problems.push(Problem::warning(
                p.display().to_string(),
                "the addresses DAR could not match are listed here",
            ));
        }
        s.counts = vec![
            (self.files.len(), "files"),
            (counts.created, "created"),
            (counts.updated, "updated"),
            (counts.terminated, "terminated"),
            (counts.deleted, "deleted"),
        ];
        s.pending = (self.pending, "postal addresses");
        s.settled = self.pending_resolved;
        s
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

/// DAR answers for the distinct non-empty postal address texts, asked concurrently. A text
/// whose lookup failed is left out (the mapping treats it as pending, not as a miss).
fn dar_answers<'t>(
    register: &dyn AddressRegister,
    texts: impl IntoIterator<Item = &'t str>,
) -> (HashMap<String, Option<Uuid>>, usize) {
    let mut out = HashMap::new();
    let mut queries = Vec::new();
    let mut seen = HashSet::new();
    for text in texts.into_iter().map(str::trim).filter(|t| !t.is_empty()) {
        if !seen.insert(text) {
            continue;
        }
        let split = crate::common::address::split(text);
        if split.postcode.is_empty() {
            out.insert(text.to_string(), None);
        } else {
            queries.push((text.to_string(), split.street, split.postcode));
        }
    }
    let answers = dar::lookup_all(
        register,
        queries.iter().map(|(_, s, p)| (s.clone(), p.clone())),
    );
    let mut failed = 0;
    for (text, street, postcode) in queries {
        match answers.get(&(street, postcode)) {
            Some(Ok(Lookup::Found(id))) => {
                out.insert(text, Some(*id));
            }
            Some(Ok(Lookup::NotFound)) => {
                out.insert(text, None);
            }
            Some(Err(_)) | None => failed += 1,
        }
    }
    (out, failed)
}

/// Write the DAR failure list (definitive misses only) of `file` beside the state file, and
/// put it into `DARfejlliste` on the server.
fn write_failure_list(
    job: &Job<'_>,
    file: &str,
    failures: &[parse::DarFailure],
    fr: &mut FileReport,
    dar_lists: &mut Vec<PathBuf>,
) -> Result<(), RunError> {
    if failures.is_empty() {
        return Ok(());
    }
    let dir = job
        .state_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = files::dar_failure_file_name(file);
    let path = dir.join(&name);
    let list = parse::write_dar_failures(failures);
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&path, &list))
        .map_err(|error| RunError::Write {
            file: path.display().to_string(),
            error,
        })?;
    dar_lists.push(path);
    // Also onto the server, for LOS's people; a server that refuses is only a warning.
    if let Err(e) = job.source.put("DARfejlliste", &name, list.as_bytes()) {
        let warning = Problem::warning(
            fr.name.as_str(),
            format!(
                "the DAR failure list could not be put into DARfejlliste on {}: {e}",
                job.source.describe()
            ),
        );
        fr.warnings.push(warning);
    }
    Ok(())
}

/// A unit of a LOS run, for the job driver.
enum Unit {
    /// The organisation and default facets when MO has none; classes and AZ every run.
    Seed,
    /// The postal addresses of one file's units whose lookups failed in earlier runs, mapped
    /// as that file would have: by its date and kind.
    Pending {
        file_date: Date,
        file: String,
        edit: bool,
        units: Vec<(String, map::PendingAddress)>,
    },
    /// A file of this run.
    File(Planned),
}

/// The LOS importer the job driver runs.
struct Importer<'a> {
    job: &'a Job<'a>,
    today: Date,
    /// The register's answers for the pending units' addresses (asked before the first write).
    pending_dar: HashMap<String, Option<Uuid>>,
    dar_lists: Vec<PathBuf>,
    pending_resolved: usize,
    /// When the run started: the state file's time after success.
    started: jiff::Timestamp,
}

/// What the mapping of a unit hands to its commit.
struct Carry {
    report: FileReport,
    file: String,
    file_date: Date,
    edit: bool,
    dar_failures: Vec<parse::DarFailure>,
    dar_pending: Vec<map::PendingAddress>,
    dar_settled: Vec<Uuid>,
    /// The pending entries a pending unit settles (its own file's).
    settles: Vec<String>,
}

impl Carry {
    fn new(report: FileReport, file: &str, file_date: Date, edit: bool) -> Carry {
        Carry {
            report,
            file: file.to_string(),
            file_date,
            edit,
            dar_failures: Vec::new(),
            dar_pending: Vec::new(),
            dar_settled: Vec::new(),
            settles: Vec::new(),
        }
    }
}

impl crate::job::Import for Importer<'_> {
    type Unit = Unit;
    type Carry = Carry;
    type Done = FileReport;
    type Error = RunError;

    fn actor(&self) -> &'static str {
        "dipex los import"
    }

    fn name(&self, unit: &Unit) -> String {
        match unit {
            Unit::Seed => "seed".into(),
            Unit::Pending { file, .. } => format!("{file} (pending addresses)"),
            Unit::File(f) => f.name.clone(),
        }
    }

    fn map(
        &mut self,
        backend: &dyn Backend,
        env: &mut dyn Env,
        unit: &Unit,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Mapped<Carry>, RunError> {
        let (facts, carry) = match unit {
            Unit::Seed => {
                let org_exists = !backend.read(&Query::all(Kind::Organisation))?.is_empty();
                let report = FileReport {
                    name: SEED.into(),
                    ..FileReport::default()
                };
                (
                    seed::facts(org_exists, self.job.azid_system),
                    Carry::new(report, SEED, self.today, false),
                )
            }
            Unit::Pending {
                file_date,
                file,
                edit,
                units,
            } => self.map_pending(backend, *file_date, file, *edit, units)?,
            Unit::File(file) => self.map_file(backend, env, file, events)?,
        };
        events(Event::Stage("read MO"));
        let current = current_of(backend, &facts, &fact_kinds(&facts))?;
        Ok(Mapped {
            facts,
            current,
            carry,
        })
    }

    fn commit(
        &mut self,
        unit: &Unit,
        carry: Carry,
        written: Written,
        _env: &mut dyn Env,
    ) -> Result<FileReport, RunError> {
        let mut fr = carry.report;
        fr.plan = written.plan.unwrap_or_default();
        fr.refused = written
            .refused
            .into_iter()
            .map(|r| Problem::rejected(fr.name.as_str(), r.to_string()).object(r.uuid))
            .collect();
        match unit {
            Unit::Seed => {}
            Unit::Pending { .. } => {
                if written.applied {
                    write_failure_list(
                        self.job,
                        &carry.file,
                        &carry.dar_failures,
                        &mut fr,
                        &mut self.dar_lists,
                    )?;
                    // A pending address OS2mo refused stays pending: no file brings it back.
                    if fr.refused.is_empty() {
                        self.job
                            .register
                            .update_pending(PENDING_IMPORTER, &carry.settles, &[])?;
                    }
                }
                if fr.refused.is_empty() {
                    self.pending_resolved += carry.settles.len();
                }
            }
            Unit::File(_) if written.applied => {
                write_failure_list(
                    self.job,
                    &carry.file,
                    &carry.dar_failures,
                    &mut fr,
                    &mut self.dar_lists,
                )?;
                // Only now that MO holds the file: settle the units it answered (every pending
                // entry of theirs, from any file), keep the failed ones (this file's rows,
                // beside other files').
                let settled_units: HashSet<String> =
                    carry.dar_settled.iter().map(Uuid::to_string).collect();
                let settled: Vec<String> = if settled_units.is_empty() {
                    Vec::new()
                } else {
                    self.job
                        .register
                        .pending(PENDING_IMPORTER)?
                        .into_iter()
                        .map(|p| p.object)
                        .filter(|key| settled_units.contains(pending_unit(key)))
                        .collect()
                };
                let added = carry
                    .dar_pending
                    .into_iter()
                    .map(|address| {
                        let object = pending_key(address.unit, &carry.file);
                        let stored = Stored {
                            file: carry.file.clone(),
                            file_date: carry.file_date,
                            edit: carry.edit,
                            address,
                        };
                        // Plain data (uuids, dates, texts): serialising it cannot fail.
                        let data = serde_json::to_string(&stored).unwrap_or_default();
                        Pending { object, data }
                    })
                    .collect::<Vec<_>>();
                if !settled.is_empty() || !added.is_empty() {
                    self.job
                        .register
                        .update_pending(PENDING_IMPORTER, &settled, &added)?;
                }
            }
            Unit::File(_) => {}
        }
        Ok(fr)
    }

    /// A refused object is tried again next run: the files are read again (reconcile makes
    /// that safe), so the state only advances when OS2mo took everything.
    fn finish(&mut self, done: &[FileReport]) -> Result<(), RunError> {
        if done.iter().all(|f| f.refused.is_empty()) {
            state::write(self.job.state_file, self.started)?;
        }
        Ok(())
    }

    fn keeps_plan(&self) -> bool {
        true
    }

    fn imported(&self, done: &FileReport) -> Option<String> {
        (done.name != SEED).then(|| done.name.clone())
    }

    fn partly_applied(error: &RunError) -> bool {
        error.partly_applied()
    }

    const UNITS: &'static str = "files";
    const RERUN: &'static str = "reads them again and continues with";

    fn after_imported(error: crate::job::AfterImported<RunError>) -> RunError {
        RunError::AfterImported(error)
    }
}

/// The name of the seed's report.
const SEED: &str = "(seed)";

impl Importer<'_> {
    /// One file's pending units: what MO holds of them, mapped again with the register's new
    /// answers.
    fn map_pending(
        &self,
        backend: &dyn Backend,
        file_date: Date,
        file: &str,
        edit: bool,
        units: &[(String, map::PendingAddress)],
    ) -> Result<(Vec<Fact>, Carry), RunError> {
        let addresses: Vec<map::PendingAddress> = units.iter().map(|(_, a)| a.clone()).collect();
        let ids: Vec<Uuid> = addresses
            .iter()
            .flat_map(|a| [a.unit, super::uuids::unit_address(a.unit, "postaddr")])
            .collect();
        let current: HashMap<Uuid, Object> = [Kind::OrgUnit, Kind::Address]
            .into_iter()
            .map(|k| backend.read(&Query::all(k).uuids(ids.iter().copied())))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .map(|o| (o.uuid, o))
            .collect();
        let persons = HashMap::new();
        let ctx = Ctx {
            current: &current,
            persons: &persons,
            file_date,
            today: self.today,
            azid_system: self.job.azid_system,
            dar: &self.pending_dar,
        };
        let mapped = map::post_addresses(&addresses, edit, &ctx);
        let report = FileReport {
            name: format!("{file} (pending addresses)"),
            rows: addresses.len(),
            dar_failures: mapped.dar_failures.len(),
            dar_pending: mapped.dar_pending.len(),
            ..FileReport::default()
        };
        // This file's entries of the units it settled (another file's are settled by their own
        // unit).
        let settled_units: HashSet<String> =
            mapped.dar_settled.iter().map(Uuid::to_string).collect();
        let mut carry = Carry::new(report, file, file_date, edit);
        carry.settles = units
            .iter()
            .map(|(key, _)| key.clone())
            .filter(|key| settled_units.contains(pending_unit(key)))
            .collect();
        carry.dar_failures = mapped.dar_failures;
        Ok((mapped.facts, carry))
    }

    /// One file: read, decode, parse, what MO holds for its rows, postal address lookups, map.
    fn map_file(
        &self,
        backend: &dyn Backend,
        env: &mut dyn Env,
        file: &Planned,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<(Vec<Fact>, Carry), RunError> {
        let job = self.job;
        let today = self.today;
        events(Event::Stage("parse"));
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
            fr.warnings
                .push(Problem::warning(file.name.as_str(), w.message));
        }
        events(Event::Stage("read MO"));
        // What MO holds for the rows of this file, and the persons of its CPR numbers.
        let kind = |k: Kind, ids: Vec<Uuid>| -> Result<HashMap<Uuid, Object>, BackendError> {
            Ok(backend
                .read(&Query::all(k).uuids(ids))?
                .into_iter()
                .map(|o| (o.uuid, o))
                .collect())
        };
        let manager_ids = |persons: &HashMap<Cpr, Uuid>,
                           rows: &mut dyn Iterator<Item = (Uuid, &Cpr)>|
         -> Vec<Uuid> {
            rows.filter_map(|(unit, cpr)| persons.get(cpr).map(|p| super::uuids::manager(unit, *p)))
                .collect()
        };
        let mut dar = HashMap::new();
        let mut persons = HashMap::new();
        let current = match &rows {
            Rows::Classes(..) | Rows::ItSystems(_) => HashMap::new(),
            Rows::OrgUnits(r) => {
                events(Event::Stage("address lookups"));
                let (answers, failed) = dar_answers(
                    job.register,
                    r.iter().filter_map(|x| x.post_address.as_deref()),
                );
                if failed > 0 {
                    fr.warnings.push(Problem::warning(file.name.as_str(), format!("{failed} address lookups failed; those units' postal addresses are pending: looked up again next run")));
                }
                dar = answers;
                kind(Kind::OrgUnit, r.iter().map(|x| x.uuid).collect())?
            }
            Rows::Persons(r) => {
                persons = persons_by_cpr(backend, r.iter().map(|x| x.cpr.clone()))?;
                kind(Kind::Person, persons.values().copied().collect())?
            }
            Rows::PersonEnds(r) => {
                kind(Kind::Engagement, r.iter().map(|x| x.engagement).collect())?
            }
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
        events(Event::Stage("map"));
        let ctx = Ctx {
            current: &current,
            persons: &persons,
            file_date,
            today,
            azid_system: job.azid_system,
            dar: &dar,
        };
        let mapped: map::Mapped = match &rows {
            Rows::Classes(kind, r) => {
                map::stam_classes(*kind, r, &backend.read(&Query::all(Kind::Class))?, today)
            }
            Rows::ItSystems(r) => {
                map::stam_itsystems(r, &backend.read(&Query::all(Kind::ItSystem))?)
            }
            Rows::OrgUnits(r) => map::org_units(r, file.kind == FileKind::OrgEdit, &ctx),
            Rows::Persons(r) => {
                map::persons(r, file.kind == FileKind::PersonEdit, &ctx, &mut || {
                    env.new_uuid()
                })
            }
            Rows::PersonEnds(r) => map::person_ends(r, &ctx),
            Rows::Managers(r) => map::managers(r, &ctx),
            Rows::ManagerEnds(r) => map::manager_ends(r, &ctx),
        };
        fr.rejected = mapped
            .rejected
            .into_iter()
            .map(|(line, why)| Problem::rejected(file.name.as_str(), why).at(Some(line)))
            .collect();
        fr.warnings.extend(
            mapped
                .warnings
                .into_iter()
                .map(|w| Problem::warning(file.name.as_str(), w)),
        );
        fr.dar_failures = mapped.dar_failures.len();
        fr.dar_pending = mapped.dar_pending.len();
        let mut carry = Carry::new(fr, &file.name, file_date, file.kind == FileKind::OrgEdit);
        carry.dar_failures = mapped.dar_failures;
        carry.dar_pending = mapped.dar_pending;
        carry.dar_settled = mapped.dar_settled;
        Ok((mapped.facts, carry))
    }
}

/// The pending units of earlier runs, by the file they came from (file-date order).
fn pending_units(job: &Job<'_>) -> Result<Vec<Unit>, RunError> {
    let mut by_file: BTreeMap<(Date, String, bool), Vec<(String, map::PendingAddress)>> =
        BTreeMap::new();
    for p in job.register.pending(PENDING_IMPORTER)? {
        if let Ok(s) = serde_json::from_str::<Stored>(&p.data) {
            by_file
                .entry((s.file_date, s.file, s.edit))
                .or_default()
                .push((p.object, s.address));
        }
    }
    Ok(by_file
        .into_iter()
        .map(|((file_date, file, edit), units)| Unit::Pending {
            file_date,
            file,
            edit,
            units,
        })
        .collect())
}

/// One import run: the seed, the pending postal addresses of earlier runs, then the files that
/// arrived since the last successful run; the state file moves when all went through.
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
    let mut units = vec![Unit::Seed];
    let pending = pending_units(job)?;
    // The register is asked about every pending address at once, before the first write.
    let (pending_dar, _) = dar_answers(
        job.register,
        pending
            .iter()
            .filter_map(|u| match u {
                Unit::Pending { units, .. } => Some(units),
                _ => None,
            })
            .flatten()
            .flat_map(|(_, a)| a.rows.iter().map(|(_, t)| t.as_str())),
    );
    units.extend(pending);
    units.extend(planned.files.into_iter().map(Unit::File));
    let mut importer = Importer {
        job,
        today,
        pending_dar,
        dar_lists: Vec::new(),
        pending_resolved: 0,
        started,
    };
    let mut done = crate::job::import(
        &mut importer,
        backend,
        env,
        &units,
        job.dry_run,
        &mut |_| {},
    )?;
    let seed = done.remove(0);
    let new_pending: usize = done
        .iter()
        .filter(|f| !f.name.ends_with("(pending addresses)"))
        .map(|f| f.dar_pending)
        .sum();
    let mut report = Report {
        unrecognised: planned.unrecognised,
        seed: seed.plan,
        dar_lists: importer.dar_lists,
        pending_resolved: importer.pending_resolved,
        ..Report::default()
    };
    if !seed.refused.is_empty() {
        report.files.push(FileReport {
            name: SEED.into(),
            refused: seed.refused,
            ..FileReport::default()
        });
    }
    report.files.extend(done);
    report.pending = if job.dry_run {
        job.register.pending(PENDING_IMPORTER)?.len() + new_pending
    } else {
        job.register.pending(PENDING_IMPORTER)?.len()
    };
    Ok(report)
}

/// What `dipex check` says about the LOS source: it lists the folder (connecting and logging in
/// for FTP/SFTP) and tells how many files an import would read now, by the state file.
pub fn check(source: &Source, state_file: &Path) -> Result<String, RunError> {
    let last = state::read(state_file)?;
    let listing: Vec<files::RemoteFile> = source
        .list()?
        .into_iter()
        .map(|f| files::RemoteFile {
            name: f.name,
            modified: f.modified,
        })
        .collect();
    let planned = files::plan(&listing, last);
    let since = match last {
        Some(t) => format!("since the last import ({t})"),
        None => "(no import yet)".to_string(),
    };
    Ok(format!(
        "{}: {} LOS files to import {since}, {} already imported, {} other files",
        source.describe(),
        planned.files.len(),
        planned.unchanged.len(),
        planned.unrecognised.len()
    ))
}
