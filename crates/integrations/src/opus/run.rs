//! The OPUS import runner: picks the pending dumps, and for each one parses it, finds what
//! changed, reads the MO objects concerned through the backend, asks the address register,
//! maps, reconciles and applies the plan in one transaction, then records the run in the state
//! database. A dump applies completely or not at all; the state only advances after success.
//!
//! Address lookups that *failed* (register down, hanging, 5xx) are not misses: the unit or
//! employment is recorded as pending in the register's state database (importer `opus`,
//! objects `unit:<id>` / `employment:<id>`), and every later run counts it as changed until its
//! lookup gets a definitive answer, so its address facts are computed again even when the dumps
//! never change it. A run with no new dump retries the pending objects against the last
//! imported dump. Pending rows change only after the plan was applied.

use super::diff::{self, Changes, Tree, TreeError};
use super::files::DumpFile;
use super::map::{self, Config, DarAnswers, MapError, Mapper, Notice};
use super::parse::{self, AddressField, Digest, Dump, ParseError};
use super::state::{Digests, RunDb, RunRow, StateError};
use crate::ad::{AdLookup, Directory};
use crate::common::report::{Problem, Summary};
use crate::dar::{self, AddressRegister, DarError, Lookup, Pending};
use crate::job::{Mapped, Written};
use dipex_backend::{Backend, BackendError, Query, Refused};
use dipex_model::plan::Counts;
use dipex_model::{Cpr, Fact, Kind, Object, Plan, Value};
use jiff::civil::DateTime;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// Which pending dumps to import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every dump newer than the last imported one, oldest first (the nightly job).
    All,
    /// Only the oldest pending dump.
    Next,
    /// Only the newest dump, skipping those in between.
    Last,
}

pub use crate::common::env::Env;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("another import is running, or the previous one did not finish (run database {path}, row {}: {:?}); if none is running, check the log of that run, then run `dipex opus unblock`", row.id, row.status)]
    Blocked { path: String, row: RunRow },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("{source_name}:{error}")]
    Map {
        source_name: String,
        /// Not a `source()`: the message shows it, and error chains are printed once.
        error: MapError,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("no unit or employment with OPUS id {id} in the dumps from {since} on")]
    NotFound { id: String, since: DateTime },
    #[error(transparent)]
    Dar(#[from] DarError),
    /// A dump failed after the dumps before it in the same run were imported (and recorded in
    /// the run history).
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

/// The digest stored for a record MO refused: it matches no record, so the next run sees the
/// record as changed and tries it again.
pub const REFUSED: Digest = Digest([0; 16]);

/// The importer name of OPUS's pending address lookups.
pub const PENDING_IMPORTER: &str = "opus";

/// What happened to one dump.
#[derive(Debug)]
pub struct DumpReport {
    pub name: String,
    pub changes: Changes,
    pub counts: Counts,
    pub rejected: Vec<Problem>,
    /// Operations OS2mo refused (or did not get because they depend on a refused object), each
    /// with its record's line and element where known and the object's uuid; their records are
    /// tried again on the next run.
    pub refused: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// The plan, kept for dry runs.
    pub plan: Option<Plan>,
    /// Units and employments whose address lookup failed in this dump (pending).
    pub pending: usize,
    /// Pending objects of earlier runs this dump settled.
    pub pending_settled: usize,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub dumps: Vec<DumpReport>,
    /// Dumps that were pending but not processed (dry runs look at one dump only).
    pub not_processed: Vec<String>,
    /// Objects whose address is still pending after the run (their lookup failed; tried again
    /// next run).
    pub pending: usize,
    /// Pending objects of earlier runs that got a definitive answer in this run.
    pub pending_resolved: usize,
}

impl ImportReport {
    pub fn rejected(&self) -> usize {
        self.dumps
            .iter()
            .map(|d| d.rejected.len() + d.refused.len())
            .sum()
    }
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for d in &self.dumps {
            c.created += d.counts.created;
            c.updated += d.counts.updated;
            c.terminated += d.counts.terminated;
            c.deleted += d.counts.deleted;
        }
        c
    }

    /// The run in the one report shape: every warning, rejected record and refused operation
    /// as a [`Problem`], a note per dump, and the counts.
    pub fn summary(&self, dry_run: bool) -> Summary {
        let mut s = Summary::new("opus import", dry_run);
        for d in &self.dumps {
            let file = d.name.as_str();
            s.problems.extend(d.warnings.iter().cloned());
            s.problems.extend(d.rejected.iter().cloned());
            s.problems.extend(d.refused.iter().cloned());
            if !d.refused.is_empty() {
                s.problems.push(Problem::warning(
                    file,
                    format!(
                        "{} operations refused by OS2mo or depending on a refused object; everything else was written, and their records are tried again on the next run",
                        d.refused.len()
                    ),
                ));
            }
            let ch = &d.changes;
            s.notes.push(format!(
                "{file}: {} units changed, {} vanished, {} filtered; {} employments changed, {} left, {} cancelled",
                ch.units.len(),
                ch.vanished_units.len(),
                ch.filtered_units.len(),
                ch.employees.len(),
                ch.leaves.len(),
                ch.cancelled.len()
            ));
        }
        for n in &self.not_processed {
            s.notes.push(format!(
                "dry run: {n} is pending too; a dry run shows the next dump only"
            ));
        }
        let c = self.counts();
        s.counts = vec![
            (self.dumps.len(), "dumps"),
            (c.created, "created"),
            (c.updated, "updated"),
            (c.terminated, "terminated"),
            (c.deleted, "deleted"),
        ];
        s.pending = (self.pending, "addresses");
        s.settled = self.pending_resolved;
        s
    }
}

pub use crate::job::Event;

/// Everything an import needs besides the backend and the state.
pub struct Job<'a> {
    pub cfg: &'a Config,
    pub register: &'a dyn AddressRegister,
    pub cpr_map: &'a HashMap<Cpr, Uuid>,
    /// The Active Directory accounts (read once before the run), when AD enrichment is on.
    pub ad: Option<&'a Directory>,
    pub dry_run: bool,
    pub only: Option<&'a str>,
}

fn digests_of(dump: &Dump) -> Digests {
    Digests {
        units: dump
            .units
            .iter()
            .map(|u| (u.id.clone(), u.digest))
            .collect(),
        employees: dump
            .employees
            .iter()
            .map(|e| (e.id.clone(), (e.digest, e.is_leave_marker())))
            .collect(),
    }
}

/// The current MO objects a mapping of `changes` needs.
fn read_current(
    backend: &dyn Backend,
    dump: &Dump,
    changes: &Changes,
    cfg: &Config,
    ad: Option<&Directory>,
) -> Result<HashMap<Uuid, Object>, BackendError> {
    let mut current: HashMap<Uuid, Object> = HashMap::new();
    let add = |objs: Vec<Object>, current: &mut HashMap<Uuid, Object>| {
        for o in objs {
            current.insert(o.uuid, o);
        }
    };
    for kind in [
        Kind::Organisation,
        Kind::Facet,
        Kind::Class,
        Kind::ItSystem,
        Kind::OrgUnit,
    ] {
        add(backend.read(&Query::all(kind))?, &mut current);
    }
    // The addresses of changed units, and of units that vanish (they end with the unit).
    let unit_uuids: Vec<Uuid> = changes
        .units
        .iter()
        .chain(&changes.vanished_units)
        .chain(&changes.filtered_units)
        .map(|id| cfg.uuids.unit(id))
        .collect();
    add(
        backend.read(&Query::all(Kind::Address).org_units(unit_uuids))?,
        &mut current,
    );
    if cfg.skip_employees {
        return Ok(current);
    }
    let mut ids: HashSet<&str> = changes
        .employees
        .iter()
        .chain(&changes.leaves)
        .chain(&changes.cancelled)
        .map(String::as_str)
        .collect();
    let mut persons: HashSet<Uuid> = HashSet::new();
    let read_employments = |ids: Vec<&str>,
                            current: &mut HashMap<Uuid, Object>,
                            persons: &mut HashSet<Uuid>|
     -> Result<(), BackendError> {
        for kind in [Kind::Engagement, Kind::Manager, Kind::Role] {
            for o in backend.read(&Query::all(kind).user_keys(ids.iter().copied()))? {
                if let Some(p) = o.last().value.refs().person {
                    persons.insert(p);
                }
                current.insert(o.uuid, o);
            }
        }
        Ok(())
    };
    read_employments(ids.iter().copied().collect(), &mut current, &mut persons)?;
    let by_id: HashMap<&str, &parse::Employee> =
        dump.employees.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut cprs: HashSet<Cpr> = changes
        .employees
        .iter()
        .filter_map(|id| by_id.get(id.as_str())?.data.as_ref().map(|d| d.cpr.clone()))
        .collect();
    for o in backend.read(&Query::all(Kind::Person).uuids(persons.iter().copied()))? {
        if let Some(c) = o.last().value.cpr() {
            cprs.insert(c.clone());
        }
        current.insert(o.uuid, o);
    }
    let mut in_mo: HashSet<Cpr> = HashSet::new();
    for o in backend.read(&Query::all(Kind::Person).cpr_numbers(cprs.iter().cloned()))? {
        if let Some(c) = o.last().value.cpr() {
            in_mo.insert(c.clone());
        }
        persons.insert(o.uuid);
        current.insert(o.uuid, o);
    }
    // The AD guids new persons may get: the mapping must see a person that already has one.
    if let Some(ad) = ad {
        let guids: Vec<Uuid> = cprs
            .iter()
            .filter(|c| !in_mo.contains(*c))
            .filter_map(|c| match ad.lookup(c) {
                AdLookup::Found(u) => Some(u.guid),
                _ => None,
            })
            .collect();
        if !guids.is_empty() {
            add(
                backend.read(&Query::all(Kind::Person).uuids(guids))?,
                &mut current,
            );
        }
    }
    // The other employments of the same persons take part in the primary calculation.
    let siblings: Vec<&str> = dump
        .employees
        .iter()
        .filter(|e| e.data.as_ref().is_some_and(|d| cprs.contains(&d.cpr)))
        .map(|e| e.id.as_str())
        .filter(|id| ids.insert(id))
        .collect();
    read_employments(siblings, &mut current, &mut persons)?;
    // Every engagement of those persons takes part in the primary calculation too, also one
    // whose employment is only a leave marker in the dump, or one made in MO.
    add(
        backend.read(&Query::all(Kind::Engagement).persons(persons.iter().copied()))?,
        &mut current,
    );
    add(
        backend.read(&Query::all(Kind::Address).persons(persons.iter().copied()))?,
        &mut current,
    );
    add(
        backend.read(&Query::all(Kind::ItUser).persons(persons.iter().copied()))?,
        &mut current,
    );
    Ok(current)
}

/// Ask the register about every address the mapping will need (concurrently, each distinct
/// address once).
fn resolve(
    register: &dyn AddressRegister,
    queries: impl IntoIterator<Item = (String, String)>,
    warnings: &mut Vec<Notice>,
) -> DarAnswers {
    let mut answers = DarAnswers::new();
    let mut failures = 0;
    for (key, answer) in dar::lookup_all(register, queries) {
        let answer = match answer {
            Ok(Lookup::Found(u)) => Ok(Some(u)),
            Ok(Lookup::NotFound) => Ok(None),
            Err(e) => {
                failures += 1;
                Err(e.reason())
            }
        };
        answers.insert(key, answer);
    }
    if failures > 0 {
        warnings.push(Notice::general(format!("{failures} address lookups failed; those addresses are pending: left as they were and looked up again next run")));
    }
    answers
}

/// Count the pending objects of earlier runs as changed (when the dump still has them, they
/// are not filtered away and `only` allows them), so their addresses are mapped again.
fn force_pending(
    changes: &mut Changes,
    dump: &Dump,
    tree: &Tree<'_>,
    pending: &BTreeMap<String, String>,
    cfg: &Config,
    only: Option<&str>,
) {
    let filtered = tree.filtered(&cfg.filter_ids);
    let units: HashSet<String> = changes.units.iter().cloned().collect();
    let employees: HashSet<String> = changes.employees.iter().cloned().collect();
    let by_id: HashMap<&str, &parse::Employee> =
        dump.employees.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut added_unit = false;
    for object in pending.keys() {
        if let Some(id) = object.strip_prefix("unit:") {
            if only.is_none_or(|o| o == id)
                && tree.by_id.contains_key(id)
                && !filtered.contains(id)
                && !units.contains(id)
            {
                changes.units.push(id.to_string());
                added_unit = true;
            }
        } else if let Some(id) = object.strip_prefix("employment:")
            && only.is_none_or(|o| o == id)
            && !cfg.skip_employees
            && by_id.get(id).is_some_and(|e| !e.is_leave_marker())
            && !employees.contains(id)
        {
            changes.employees.push(id.to_string());
        }
    }
    if added_unit {
        changes.units.sort_by_key(|id| tree.depth[id.as_str()]);
    }
}

/// Take a refused operation out of the planned counts.
pub fn uncount(c: &mut Counts, r: &Refused) {
    let n = match r.op.split_whitespace().next() {
        Some("create") => &mut c.created,
        Some("update") => &mut c.updated,
        Some("terminate") => &mut c.terminated,
        _ => &mut c.deleted,
    };
    *n = n.saturating_sub(1);
}

/// The OPUS record an MO object's facts come from.
#[derive(Clone, Copy, Debug)]
enum Rec {
    /// Index into the dump's units.
    Unit(u32),
    /// Index into the dump's employees.
    Employee(u32),
    /// A unit no longer in the dump (index into `Changes::vanished_units` then `filtered_units`).
    Gone(u32),
    /// An employment no longer in the dump (index into `Changes::cancelled`).
    Cancelled(u32),
}

/// Which record each written object comes from, sorted by uuid (a plain sorted list: it lives
/// through the whole write of a first import, a quarter of a million entries, and a hash map
/// of them would cost twice the memory).
#[derive(Default)]
struct Origins(Vec<(Uuid, Rec)>);

impl Origins {
    fn get(&self, uuid: &Uuid) -> Option<&Rec> {
        self.0
            .binary_search_by(|(u, _)| u.cmp(uuid))
            .ok()
            .map(|i| &self.0[i].1)
    }
}

/// Where each fact comes from: units by uuid, employments by user_key, persons by CPR, and the
/// addresses and IT users of both by their owner. Classes and IT systems have no record.
fn origins(
    facts: &[Fact],
    dump: &Dump,
    changes: &Changes,
    current: &HashMap<Uuid, Object>,
    cfg: &Config,
) -> Origins {
    let mut units: HashMap<Uuid, Rec> = HashMap::with_capacity(dump.units.len());
    for (i, u) in dump.units.iter().enumerate() {
        units.insert(cfg.uuids.unit(&u.id), Rec::Unit(i as u32));
    }
    for (i, id) in changes
        .vanished_units
        .iter()
        .chain(&changes.filtered_units)
        .enumerate()
    {
        units
            .entry(cfg.uuids.unit(id))
            .or_insert(Rec::Gone(i as u32));
    }
    let mut by_key: HashMap<&str, Rec> = HashMap::with_capacity(dump.employees.len());
    let mut by_cpr: HashMap<&Cpr, Rec> = HashMap::new();
    for (i, e) in dump.employees.iter().enumerate() {
        by_key.insert(&e.id, Rec::Employee(i as u32));
        if let Some(d) = &e.data {
            by_cpr.entry(&d.cpr).or_insert(Rec::Employee(i as u32));
        }
    }
    for (i, id) in changes.cancelled.iter().enumerate() {
        by_key.entry(id).or_insert(Rec::Cancelled(i as u32));
    }
    let mut out: Vec<(Uuid, Rec)> = Vec::with_capacity(facts.len());
    let mut persons: HashMap<Uuid, Rec> = HashMap::new();
    for f in facts {
        let uuid = f.uuid();
        let value: Option<&Value> = match f {
            Fact::State { timeline, .. } => timeline.first().map(|s| &s.value),
            Fact::End { .. } | Fact::Delete { .. } => current.get(&uuid).map(|o| &o.last().value),
        };
        let Some(value) = value else { continue };
        let refs = value.refs();
        let person_rec = |p: Uuid, persons: &HashMap<Uuid, Rec>| {
            persons.get(&p).copied().or_else(|| {
                let cpr = current.get(&p)?.last().value.cpr()?;
                by_cpr.get(cpr).copied()
            })
        };
        let rec = match value {
            Value::OrgUnit(_) => units.get(&uuid).copied(),
            Value::Person(p) => {
                let r = p.cpr_number.as_ref().and_then(|c| by_cpr.get(c).copied());
                if let Some(r) = r {
                    persons.insert(uuid, r);
                }
                r
            }
            Value::Engagement(_)
            | Value::Manager(_)
            | Value::Role(_)
            | Value::Association(_)
            | Value::Leave(_) => by_key
                .get(value.user_key())
                .copied()
                .or_else(|| refs.person.and_then(|p| person_rec(p, &persons))),
            _ => match (refs.person, refs.org_unit) {
                (Some(p), _) => person_rec(p, &persons),
                (None, Some(u)) => units.get(&u).copied(),
                _ => None,
            },
        };
        if let Some(r) = rec {
            out.push((uuid, r));
        }
    }
    // A later fact about the same object wins (as it does in reconcile): a stable sort, then
    // the last entry of each uuid.
    out.sort_by_key(|(u, _)| *u);
    out.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = later.1;
        }
        same
    });
    out.shrink_to_fit();
    Origins(out)
}

/// The objects whose address lookup failed: changed units with a failed address, and every
/// employment (of a changed person) whose home address failed. The data names the address.
fn failed_objects(
    dump: &Dump,
    changes: &Changes,
    tree: &Tree<'_>,
    answers: &DarAnswers,
    skip_address: bool,
) -> BTreeMap<String, String> {
    let failed = |s: &str, z: &str| {
        answers
            .get(&(s.to_string(), z.to_string()))
            .is_some_and(|a| a.is_err())
    };
    let data = |s: &str, z: &str| serde_json::json!({"street": s, "postal_code": z}).to_string();
    let mut out = BTreeMap::new();
    for id in &changes.units {
        let u = tree.by_id[id.as_str()];
        if let (Some(s), Some(z)) = (&u.street, &u.zip_code)
            && failed(s, z)
        {
            out.insert(format!("unit:{id}"), data(s, z));
        }
    }
    if !skip_address {
        let changed: HashSet<&str> = changes.employees.iter().map(String::as_str).collect();
        let cprs: HashSet<&Cpr> = dump
            .employees
            .iter()
            .filter(|e| changed.contains(e.id.as_str()))
            .filter_map(|e| e.data.as_ref().map(|d| &d.cpr))
            .collect();
        for e in &dump.employees {
            if let Some(d) = &e.data
                && cprs.contains(&d.cpr)
                && let (Some(AddressField::Plain(s)), Some(z)) = (&d.address, &d.postal_code)
                && failed(s, z)
            {
                out.insert(format!("employment:{}", e.id), data(s, z));
            }
        }
    }
    out
}

/// The id and line of the units and employees of a dump, by index (for [`Rec`]).
struct Records {
    units: Vec<(String, u64)>,
    employees: Vec<(String, u64, bool)>,
    gone: Vec<String>,
    cancelled: Vec<String>,
}

impl Records {
    /// The record of `rec`: its line and element, and marks it refused in `digests` so the next
    /// run takes it as changed.
    fn refuse(&self, rec: Rec, digests: &mut Digests) -> (u64, String) {
        match rec {
            Rec::Unit(i) | Rec::Gone(i) => {
                let (id, line) = match rec {
                    Rec::Unit(_) => self.units[i as usize].clone(),
                    _ => (self.gone[i as usize].clone(), 0),
                };
                digests.units.insert(id.clone(), REFUSED);
                (line, format!("orgUnit id=\"{id}\""))
            }
            Rec::Employee(i) => {
                let (id, line, leave) = self.employees[i as usize].clone();
                digests.employees.insert(id.clone(), (REFUSED, leave));
                (line, format!("employee id=\"{id}\""))
            }
            Rec::Cancelled(i) => {
                let id = self.cancelled[i as usize].clone();
                digests.employees.insert(id.clone(), (REFUSED, false));
                (0, format!("employee id=\"{id}\""))
            }
        }
    }
}

/// The pending objects of earlier runs this dump settled: mapped again (and not failed again),
/// or gone from the dump.
fn settled(
    pending: &BTreeMap<String, String>,
    changes: &Changes,
    dump: &Dump,
    tree: &Tree<'_>,
    failed: &BTreeMap<String, String>,
    only: Option<&str>,
) -> Vec<String> {
    let units: HashSet<&str> = changes.units.iter().map(String::as_str).collect();
    let employees: HashSet<&str> = changes.employees.iter().map(String::as_str).collect();
    let present: HashSet<&str> = dump
        .employees
        .iter()
        .filter(|e| !e.is_leave_marker())
        .map(|e| e.id.as_str())
        .collect();
    pending
        .keys()
        .filter(|object| !failed.contains_key(*object))
        .filter(|object| {
            if let Some(id) = object.strip_prefix("unit:") {
                units.contains(id) || (only.is_none() && !tree.by_id.contains_key(id))
            } else if let Some(id) = object.strip_prefix("employment:") {
                employees.contains(id) || (only.is_none() && !present.contains(id))
            } else {
                true
            }
        })
        .cloned()
        .collect()
}

/// The digests of the last imported dump: stored by dipex (`true`), or computed from the dump
/// file when the history came from the old importer (`false`). `None` (with a warning) when
/// neither is possible.
fn previous_digests(
    rundb: Option<&RunDb>,
    last: Option<DateTime>,
    dumps: &[DumpFile],
    warnings: &mut Vec<Notice>,
) -> Result<Option<(Digests, bool)>, RunError> {
    let Some(last) = last else { return Ok(None) };
    if let Some(db) = rundb
        && let Some(d) = db.digests(last)?
    {
        return Ok(Some((d, true)));
    }
    match dumps.iter().find(|d| d.timestamp == last) {
        Some(f) => Ok(Some((digests_of(&parse::parse_file(&f.path)?), false))),
        None => {
            warnings.push(Notice::general(format!(
                "the last imported dump ({last}) is no longer available and its digests are unknown: every record counts as changed (safe, but vanished units and employments are not detected this time)"
            )));
            Ok(None)
        }
    }
}

/// The dumps `mode` imports after the one imported last (`last`), oldest first. (A dry run
/// looks at the first of them only.)
pub fn select(dumps: &[DumpFile], last: Option<DateTime>, mode: Mode) -> Vec<&DumpFile> {
    let mut pending = dumps
        .iter()
        .filter(|d| last.is_none_or(|l| d.timestamp > l));
    match mode {
        Mode::All => pending.collect(),
        Mode::Next => pending.take(1).collect(),
        Mode::Last => pending.next_back().into_iter().collect(),
    }
}

/// A unit of an OPUS run, for the job driver.
pub enum Unit<'d> {
    /// The objects whose address lookups failed in earlier runs, mapped again against the last
    /// imported dump (compared with itself, only they count as changed). The run history does
    /// not move.
    Pending(&'d DumpFile),
    /// A dump to import.
    Dump(&'d DumpFile),
}

impl Unit<'_> {
    fn file(&self) -> &DumpFile {
        match self {
            Unit::Pending(f) | Unit::Dump(f) => f,
        }
    }
}

/// `dipex opus reimport`: one record replayed through the dumps.
struct Replay {
    id: String,
    /// This record's digest in the dump replayed before.
    previous: Option<Digests>,
    found: bool,
}

/// The OPUS importer the job driver runs: the run database, the pending address lookups, the
/// last imported dump.
struct Importer<'a, 'r> {
    job: &'a Job<'a>,
    rundb: Option<&'r mut RunDb>,
    dumps: &'a [DumpFile],
    last: Option<DateTime>,
    /// The objects whose address lookups failed (`unit:<id>`, `employment:<id>`).
    pending: BTreeMap<String, String>,
    /// The `Running` row of the dump being imported.
    row: Option<i64>,
    replay: Option<Replay>,
}

/// What the mapping of a dump hands to its commit.
struct Carry {
    name: String,
    changes: Changes,
    warnings: Vec<Problem>,
    rejected: Vec<Problem>,
    origin: Origins,
    records: Records,
    /// The digests of this dump, and of the dump it was compared with (`true`: as stored).
    digests: Digests,
    previous: Option<(Digests, bool)>,
    /// Objects whose lookup failed in this dump; pending objects it settled.
    failed: BTreeMap<String, String>,
    resolved: Vec<String>,
}

impl<'a> crate::job::Import for Importer<'a, '_> {
    type Unit = Unit<'a>;
    type Carry = Carry;
    type Done = DumpReport;
    type Error = RunError;

    fn actor(&self) -> &'static str {
        "dipex opus import"
    }

    fn name(&self, unit: &Unit<'_>) -> String {
        unit.file().name.clone()
    }

    fn begin(&mut self, unit: &Unit<'_>, env: &mut dyn Env) -> Result<(), RunError> {
        let (Unit::Dump(file), Some(db), false) = (unit, self.rundb.as_deref(), self.job.dry_run)
        else {
            return Ok(());
        };
        match db.begin(file.timestamp, env.now())? {
            Some(row) => {
                self.row = Some(row);
                Ok(())
            }
            None => {
                let row = db.blocking_row()?.unwrap_or(RunRow {
                    id: 0,
                    dump_date: String::new(),
                    status: "Running".into(),
                });
                Err(RunError::Blocked {
                    path: db.path().to_string(),
                    row,
                })
            }
        }
    }

    fn map(
        &mut self,
        backend: &dyn Backend,
        env: &mut dyn Env,
        unit: &Unit<'_>,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Mapped<Carry>, RunError> {
        let job = self.job;
        let file = unit.file();
        let mut notices = Vec::new();
        let (previous, fresh) = match &self.replay {
            Some(r) => (r.previous.clone().map(|d| (d, false)), true),
            None => (
                previous_digests(self.rundb.as_deref(), self.last, self.dumps, &mut notices)?,
                matches!(unit, Unit::Dump(_)) && self.last.is_none(),
            ),
        };
        events(Event::Stage("parse"));
        let dump = parse::parse_file(&file.path)?;
        let digests = digests_of(&dump);
        let tree = Tree::check(&dump, &file.name)?;
        let mut changes = diff::changes(
            &dump,
            &tree,
            previous.as_ref().map(|p| &p.0),
            &job.cfg.filter_ids,
            job.only,
        );
        // Without digests of an earlier import, records are changed, not new: their history in
        // MO before the change is kept.
        changes.first &= fresh;
        force_pending(&mut changes, &dump, &tree, &self.pending, job.cfg, job.only);
        events(Event::Stage("read MO"));
        let current = read_current(backend, &dump, &changes, job.cfg, job.ad)?;
        events(Event::Stage("address lookups"));
        let skip_address = job.cfg.skip_address || job.cfg.skip_employees;
        let queries = map::dar_queries(&dump, &changes, &tree, skip_address);
        let answers = resolve(job.register, queries, &mut notices);
        let failed = failed_objects(&dump, &changes, &tree, &answers, skip_address);
        let resolved = settled(&self.pending, &changes, &dump, &tree, &failed, job.only);
        events(Event::Stage("map"));
        let mapper = Mapper::new(
            job.cfg,
            &dump,
            &tree,
            file.timestamp.date(),
            &current,
            &answers,
            job.cpr_map,
            job.ad,
        );
        let mut new_uuid = || env.new_uuid();
        let mapped = mapper
            .map(&changes, &mut new_uuid)
            .map_err(|source| RunError::Map {
                source_name: file.name.clone(),
                error: source,
            })?;
        notices.extend(mapped.warnings);
        let origin = if job.dry_run {
            Origins::default()
        } else {
            origins(&mapped.facts, &dump, &changes, &current, job.cfg)
        };
        let records = Records {
            units: dump.units.iter().map(|u| (u.id.clone(), u.line)).collect(),
            employees: dump
                .employees
                .iter()
                .map(|e| (e.id.clone(), e.line, e.is_leave_marker()))
                .collect(),
            gone: changes
                .vanished_units
                .iter()
                .chain(&changes.filtered_units)
                .cloned()
                .collect(),
            cancelled: changes.cancelled.clone(),
        };
        let carry = Carry {
            name: match unit {
                Unit::Pending(_) => format!("{} (pending addresses)", file.name),
                Unit::Dump(_) => file.name.clone(),
            },
            warnings: notices.iter().map(|w| w.problem(&file.name)).collect(),
            rejected: mapped
                .rejected
                .iter()
                .map(|r| r.problem(&file.name))
                .collect(),
            changes,
            origin,
            records,
            digests,
            previous,
            failed,
            resolved,
        };
        // The parsed dump is freed here, before the plan is built.
        Ok(Mapped {
            facts: mapped.facts,
            current,
            carry,
        })
    }

    fn commit(
        &mut self,
        unit: &Unit<'_>,
        carry: Carry,
        written: Written,
        env: &mut dyn Env,
    ) -> Result<DumpReport, RunError> {
        let Carry {
            name,
            changes,
            warnings,
            rejected,
            origin,
            records,
            mut digests,
            previous,
            failed,
            resolved,
        } = carry;
        let mut counts = written.counts;
        let mut refused = Vec::new();
        for r in written.refused {
            uncount(&mut counts, &r);
            let problem =
                Problem::rejected(unit.file().name.as_str(), r.to_string()).object(r.uuid);
            refused.push(
                match origin
                    .get(&r.uuid)
                    .map(|rec| records.refuse(*rec, &mut digests))
                {
                    Some((line, element)) => problem.at(Some(line)).element(element),
                    None => problem,
                },
            );
        }
        if written.applied {
            // Only now that MO holds the plan: forget the settled pending objects, remember the
            // new. (A settled object whose record MO refused is tried again through its digest.)
            let added: Vec<Pending> = failed
                .iter()
                .map(|(object, data)| Pending {
                    object: object.clone(),
                    data: data.clone(),
                })
                .collect();
            self.job
                .register
                .update_pending(PENDING_IMPORTER, &resolved, &added)?;
        }
        for object in &resolved {
            self.pending.remove(object);
        }
        let new_pending = failed.len();
        self.pending.extend(failed);
        let file = unit.file();
        if let Some(replay) = &mut self.replay {
            // Keep only this record's digest: the next dump is compared with this version.
            let id = replay.id.as_str();
            let mut mine = Digests::default();
            if let Some(d) = digests.units.get(id) {
                mine.units.insert(id.to_string(), *d);
            }
            if let Some(d) = digests.employees.get(id) {
                mine.employees.insert(id.to_string(), *d);
            }
            replay.found |= !mine.units.is_empty() || !mine.employees.is_empty();
            replay.previous = Some(mine);
        } else if let Unit::Dump(_) = unit {
            if let Some(db) = self.rundb.as_deref_mut()
                && written.applied
            {
                // Only what changed is written when the table holds the previous digests.
                let stored = previous.as_ref().filter(|p| p.1).map(|p| &p.0);
                db.finish(file.timestamp, env.now(), &digests, stored)?;
            }
            self.row = None;
            self.last = Some(file.timestamp);
        }
        Ok(DumpReport {
            name,
            changes,
            counts,
            rejected,
            refused,
            warnings,
            plan: written.plan,
            pending: new_pending,
            pending_settled: resolved.len(),
        })
    }

    fn abandon(&mut self, _unit: &Unit<'_>) -> Result<(), RunError> {
        // Nothing of this dump was recorded, so our own Running row goes and a re-run can start
        // right away.
        if let (Some(db), Some(row)) = (self.rundb.as_deref(), self.row.take()) {
            db.abandon(row)?;
        }
        Ok(())
    }

    fn imported(&self, done: &DumpReport) -> Option<String> {
        (self.replay.is_none() && !done.name.ends_with("(pending addresses)"))
            .then(|| done.name.clone())
    }

    fn partly_applied(error: &RunError) -> bool {
        error.partly_applied()
    }

    const UNITS: &'static str = "dumps";
    const RERUN: &'static str = "continues with";

    fn after_imported(error: crate::job::AfterImported<RunError>) -> RunError {
        RunError::AfterImported(error)
    }
}

/// Import the pending dumps. With `rundb = None` (a dry run without history) everything is
/// compared against nothing.
pub fn import(
    backend: &mut dyn Backend,
    rundb: Option<&mut RunDb>,
    job: &Job<'_>,
    env: &mut dyn Env,
    dumps: &[DumpFile],
    mode: Mode,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<ImportReport, RunError> {
    if let Some(db) = rundb.as_deref()
        && let Some(row) = db.blocking_row()?
    {
        return Err(RunError::Blocked {
            path: db.path().to_string(),
            row,
        });
    }
    let last = match rundb.as_deref() {
        Some(db) => db.last_imported()?,
        None => None,
    };
    let mut selected = select(dumps, last, mode);
    let mut report = ImportReport::default();
    let pending: BTreeMap<String, String> = job
        .register
        .pending(PENDING_IMPORTER)?
        .into_iter()
        .map(|p| (p.object, p.data))
        .collect();
    let mut units = Vec::new();
    if selected.is_empty()
        && !pending.is_empty()
        && let Some(file) = last.and_then(|l| dumps.iter().find(|d| d.timestamp == l))
    {
        // No new dump: retry the pending objects against the last imported one.
        units.push(Unit::Pending(file));
    }
    if job.dry_run && selected.len() > 1 {
        report.not_processed = selected
            .split_off(1)
            .iter()
            .map(|d| d.name.clone())
            .collect();
    }
    units.extend(selected.into_iter().map(Unit::Dump));
    let mut importer = Importer {
        job,
        rundb,
        dumps,
        last,
        pending,
        row: None,
        replay: None,
    };
    report.dumps = crate::job::import(&mut importer, backend, env, &units, job.dry_run, events)?;
    report.pending = importer.pending.len();
    report.pending_resolved = report.dumps.iter().map(|d| d.pending_settled).sum();
    Ok(report)
}

/// `dipex opus reimport`: replay one employment (or unit) through the dumps from `since` on,
/// applying each version that differs from the one before. Does not touch the run history.
pub fn reimport(
    backend: &mut dyn Backend,
    job: &Job<'_>,
    env: &mut dyn Env,
    dumps: &[DumpFile],
    id: &str,
    since: DateTime,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<ImportReport, RunError> {
    let job = Job {
        only: Some(id),
        ..*job
    };
    // Pending objects of the import are left alone, except this object's, which a replay
    // settles or records again like an import does.
    let pending: BTreeMap<String, String> = job
        .register
        .pending(PENDING_IMPORTER)?
        .into_iter()
        .filter(|p| p.object.split_once(':').is_some_and(|(_, o)| o == id))
        .map(|p| (p.object, p.data))
        .collect();
    let units: Vec<Unit<'_>> = dumps
        .iter()
        .filter(|d| d.timestamp >= since)
        .map(Unit::Dump)
        .collect();
    let mut importer = Importer {
        job: &job,
        rundb: None,
        dumps,
        last: None,
        pending,
        row: None,
        replay: Some(Replay {
            id: id.to_string(),
            previous: None,
            found: false,
        }),
    };
    let done = crate::job::import(&mut importer, backend, env, &units, job.dry_run, events)?;
    if !importer.replay.is_some_and(|r| r.found) {
        return Err(RunError::NotFound {
            id: id.to_string(),
            since,
        });
    }
    Ok(ImportReport {
        dumps: done,
        pending: importer.pending.len(),
        ..ImportReport::default()
    })
}

/// A unit whose address the register cannot resolve (`dipex opus check-dar`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DarProblem {
    pub id: String,
    pub name: String,
    pub street: String,
    pub zip: String,
    pub reason: String,
}

/// Look up the address of every unit of a dump that is not filtered away.
pub fn check_dar(
    dump: &Dump,
    tree: &Tree<'_>,
    filter_ids: &[String],
    register: &dyn AddressRegister,
) -> Vec<DarProblem> {
    let filtered = tree.filtered(filter_ids);
    let units: Vec<(&parse::Unit, &String, &String)> = dump
        .units
        .iter()
        .filter(|u| !filtered.contains(u.id.as_str()))
        .filter_map(|u| Some((u, u.street.as_ref()?, u.zip_code.as_ref()?)))
        .collect();
    let mut answers = dar::lookup_all(
        register,
        units.iter().map(|(_, s, z)| ((*s).clone(), (*z).clone())),
    );
    let mut out = Vec::new();
    for (u, street, zip) in units {
        let reason = match answers.get_mut(&(street.clone(), zip.clone())) {
            Some(Ok(Lookup::Found(_))) => continue,
            Some(Ok(Lookup::NotFound)) | None => "no unambiguous match".to_string(),
            Some(Err(e)) => e.to_string(),
        };
        out.push(DarProblem {
            id: u.id.clone(),
            name: u.long_name.clone(),
            street: street.clone(),
            zip: zip.clone(),
            reason,
        });
    }
    out
}

/// The person objects of MO, for `dipex cpr-map export`.
pub fn persons(backend: &dyn Backend) -> Result<Vec<Object>, BackendError> {
    backend.read(&Query::all(Kind::Person))
}
