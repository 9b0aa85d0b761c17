//! The OS2Sync runs, through the job driver (`crate::job::export`; the sink is OS2Sync's REST
//! API): the full export (units parents first, then deletions of units OS2Sync has
//! and MO does not (with `autowash`), then users, then deletions of users MO no longer yields),
//! and the single-unit and single-user syncs. Requests go through the hash cache; a refused
//! request is reported and counted and the run goes on. `dry_run` reads but never writes.

use super::api::{Api, ApiError};
use super::cache::{CacheError, HashCache};
use super::config::Config;
use super::map::{BuildError, Ix};
use super::payload::{OrgUnit, User, digest};
use super::read::Snapshot;
use crate::common::report::{Problem, Summary};
use crate::dar::{AddressRegister, DarError};
use dipex_backend::{Backend, BackendError};
use dipex_model::Date;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("reading MO: {0}")]
    Backend(BackendError),
    #[error("the address register: {0}")]
    Dar(DarError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(
        "unit {0} is not exported to OS2Sync (not valid today, not under os2sync.top_unit_uuid, or left out by the hierarchy, level or type settings)"
    )]
    NotSynced(Uuid),
}

// The wrapped errors are shown in the message, so they are not also given as `source()`:
// `{:#}` (anyhow) would print them twice.
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

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per request sent (or, in a dry run, that would be sent).
    pub requests: Vec<String>,
    pub units_posted: usize,
    pub users_posted: usize,
    pub deleted: usize,
    /// Unchanged since the last run (hash cache) or equal to what FK Organisation holds.
    pub unchanged: usize,
    /// Requests OS2Sync refused, each with the reason.
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
}

impl Report {
    /// The run in the one report shape: every warning and every request OS2Sync refused as a
    /// [`Problem`], and the counts.
    pub fn summary(&self, dry_run: bool) -> Summary {
        let mut s = Summary::new("os2sync", dry_run);
        for w in &self.warnings {
            s.problems.push(Problem::warning("os2sync", w.as_str()));
        }
        for f in &self.failures {
            s.problems.push(Problem::rejected("OS2Sync", f.as_str()));
        }
        s.counts = vec![
            (self.requests.len(), "requests"),
            (self.units_posted, "units posted"),
            (self.users_posted, "users posted"),
            (self.deleted, "deleted"),
            (self.unchanged, "unchanged"),
        ];
        s
    }
}

struct Ctx<'a> {
    api: Api,
    cache: HashCache,
    dry_run: bool,
    report: Report,
    cfg: &'a Config,
}

impl Ctx<'_> {
    fn upsert_unit(&mut self, unit: &OrgUnit, use_cache: bool) {
        let key = format!("/orgUnit/{}", unit.uuid);
        let d = digest(unit, "upsert");
        if use_cache && self.cache.is_current(&key, &d) {
            self.report.unchanged += 1;
            return;
        }
        let fk = match self.api.get_org_unit(unit.uuid) {
            Ok(fk) => fk,
            Err(e) => {
                self.report
                    .failures
                    .push(format!("unit {} ({}): {e}", unit.uuid, unit.name));
                return;
            }
        };
        let mut payload = unit.clone();
        if let Some(fk) = &fk {
            payload.merge_from_fk(fk);
            if payload.same_as(fk) {
                self.report.unchanged += 1;
                if !self.dry_run {
                    self.cache.record(key, d);
                }
                return;
            }
        }
        self.report
            .requests
            .push(format!("POST orgUnit {} {:?}", payload.uuid, payload.name));
        if self.dry_run {
            return;
        }
        match self.api.post_org_unit(&payload) {
            Ok(()) => {
                self.report.units_posted += 1;
                self.cache.record(key, d);
            }
            Err(e) => self
                .report
                .failures
                .push(format!("unit {} ({}): {e}", unit.uuid, unit.name)),
        }
    }

    fn upsert_user(&mut self, user: &User, use_cache: bool) {
        let key = format!("/user/{}", user.uuid);
        let d = digest(user, "upsert");
        if use_cache && self.cache.is_current(&key, &d) {
            self.report.unchanged += 1;
            return;
        }
        self.report
            .requests
            .push(format!("POST user {} {:?}", user.uuid, user.user_id));
        if self.dry_run {
            return;
        }
        match self.api.post_user(user) {
            Ok(()) => {
                self.report.users_posted += 1;
                self.cache.record(key, d);
            }
            Err(e) => self
                .report
                .failures
                .push(format!("user {} ({}): {e}", user.uuid, user.user_id)),
        }
    }

    fn delete(&mut self, kind: &str, uuid: Uuid, use_cache: bool) {
        let key = format!("/{kind}/{uuid}");
        let d = digest(&serde_json::json!({}), "delete");
        if use_cache && self.cache.is_current(&key, &d) {
            self.report.unchanged += 1;
            return;
        }
        self.report.requests.push(format!("DELETE {kind} {uuid}"));
        if self.dry_run {
            return;
        }
        match self.api.delete(kind, uuid) {
            Ok(()) => {
                self.report.deleted += 1;
                self.cache.record(key, d);
            }
            Err(e) => self
                .report
                .failures
                .push(format!("delete {kind} {uuid}: {e}")),
        }
    }
}

fn ctx(cfg: &Config, dry_run: bool) -> Result<Ctx<'_>, RunError> {
    Ok(Ctx {
        api: Api::new(cfg),
        cache: HashCache::load(&cfg.hash_cache)?,
        dry_run,
        report: Report::default(),
        cfg,
    })
}

/// What a run sends.
#[derive(Clone, Copy)]
enum Scope {
    /// Everything, with deletions of what MO no longer yields.
    All,
    /// One unit, compared with FK Organisation whatever the hash cache says.
    Unit(Uuid),
    /// One person's users; a person with no position in the synced units is deleted.
    User(Uuid),
}

/// The payloads of a run.
struct Payloads {
    units: Vec<OrgUnit>,
    users: Vec<User>,
    warnings: Vec<String>,
}

/// The OS2Sync exporter the job driver runs; its sink is OS2Sync's REST API.
struct Exporter<'a> {
    c: Ctx<'a>,
    today: Date,
    scope: Scope,
    /// The hierarchy job of a full export, started before MO is read (OS2Sync reads FK
    /// Organisation meanwhile).
    hierarchy_job: Option<Uuid>,
}

impl crate::job::Export for Exporter<'_> {
    type Snapshot = Snapshot;
    type Output = Payloads;
    type Report = Report;
    type Error = RunError;

    fn read(&mut self, backend: &dyn Backend) -> Result<Snapshot, RunError> {
        let persons: [Uuid; 1];
        let only: Option<&[Uuid]> = match self.scope {
            Scope::All => {
                self.hierarchy_job = Some(self.c.api.start_hierarchy()?);
                None
            }
            Scope::Unit(_) => Some(&[]),
            Scope::User(p) => {
                persons = [p];
                Some(&persons)
            }
        };
        Ok(Snapshot::read(backend, self.today, only)?)
    }

    fn addresses(&self, snapshot: &Snapshot) -> Vec<Uuid> {
        Ix::dar_ids(snapshot, self.today)
    }

    fn map(
        &mut self,
        snapshot: Snapshot,
        texts: &HashMap<Uuid, String>,
    ) -> Result<Payloads, RunError> {
        let mut ix = Ix::new(&snapshot, self.c.cfg, self.today, texts)?;
        let (units, users) = match self.scope {
            Scope::All => (ix.units(), ix.users()?),
            Scope::Unit(u) => (vec![ix.unit(u).ok_or(RunError::NotSynced(u))?], Vec::new()),
            Scope::User(p) => (Vec::new(), ix.users_of(p)?),
        };
        Ok(Payloads {
            units,
            users,
            warnings: std::mem::take(&mut ix.warnings),
        })
    }

    fn sink(&mut self, payloads: Payloads) -> Result<Report, RunError> {
        let Payloads {
            units,
            users,
            mut warnings,
        } = payloads;
        let c = &mut self.c;
        match self.scope {
            Scope::Unit(_) => {
                for u in &units {
                    c.upsert_unit(u, false);
                }
            }
            Scope::User(person) => {
                if users.is_empty() {
                    c.delete("user", person, false);
                }
                for u in &users {
                    c.upsert_user(u, false);
                }
            }
            Scope::All => {
                let cfg = c.cfg;
                let job = self.hierarchy_job.take().unwrap_or_default();
                let fk = c
                    .api
                    .hierarchy(job, cfg.hierarchy_wait, cfg.hierarchy_poll)?;
                for u in &units {
                    c.upsert_unit(u, true);
                }
                let mo_units: HashSet<Uuid> = units.iter().map(|u| u.uuid).collect();
                let top_fk = units.first().map(|u| u.uuid);
                if cfg.autowash {
                    if units.is_empty() {
                        warnings.push("autowash: MO yields no units; nothing is deleted".into());
                    } else {
                        for gone in fk.units.iter().filter(|u| !mo_units.contains(u)) {
                            if *gone == cfg.top_unit || Some(*gone) == top_fk {
                                warnings.push(format!(
                                    "autowash: the top unit {gone} is never deleted"
                                ));
                                continue;
                            }
                            c.delete("orgUnit", *gone, true);
                        }
                    }
                }
                for u in &users {
                    c.upsert_user(u, true);
                }
                let mo_users: HashSet<Uuid> = users.iter().map(|u| u.uuid).collect();
                if users.is_empty() {
                    warnings.push("MO yields no users; no user is deleted in OS2Sync".into());
                } else {
                    for gone in fk.users.iter().filter(|u| !mo_users.contains(u)) {
                        c.delete("user", *gone, true);
                    }
                }
            }
        }
        if !c.dry_run {
            c.cache.save()?;
        }
        let mut report = std::mem::take(&mut c.report);
        report.warnings.extend(warnings);
        Ok(report)
    }
}

fn run(
    backend: &dyn Backend,
    register: &dyn AddressRegister,
    cfg: &Config,
    today: Date,
    scope: Scope,
    dry_run: bool,
) -> Result<Report, RunError> {
    let mut exporter = Exporter {
        c: ctx(cfg, dry_run)?,
        today,
        scope,
        hierarchy_job: None,
    };
    crate::job::export(&mut exporter, backend, register)
}

/// The full export: units parents first, deletions of units OS2Sync has and MO does not (with
/// `autowash`), users, deletions of users MO no longer yields.
pub fn export(
    backend: &dyn Backend,
    register: &dyn AddressRegister,
    cfg: &Config,
    today: Date,
    dry_run: bool,
) -> Result<Report, RunError> {
    run(backend, register, cfg, today, Scope::All, dry_run)
}

/// Send one unit (always compared with FK Organisation, whatever the hash cache says).
pub fn sync_unit(
    backend: &dyn Backend,
    register: &dyn AddressRegister,
    cfg: &Config,
    today: Date,
    unit: Uuid,
    dry_run: bool,
) -> Result<Report, RunError> {
    run(backend, register, cfg, today, Scope::Unit(unit), dry_run)
}

/// Send one person's users; a person with no position in the synced units is deleted.
pub fn sync_user(
    backend: &dyn Backend,
    register: &dyn AddressRegister,
    cfg: &Config,
    today: Date,
    person: Uuid,
    dry_run: bool,
) -> Result<Report, RunError> {
    run(backend, register, cfg, today, Scope::User(person), dry_run)
}

/// Does OS2Sync answer (with our CVR and ApiKey)? Starts a harmless hierarchy job.
pub fn ping(cfg: &Config) -> Result<Uuid, ApiError> {
    Api::new(cfg).start_hierarchy()
}
