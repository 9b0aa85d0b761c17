//! The OS2Sync runs: the full export (units parents first, then deletions of units OS2Sync has
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

    fn finish(mut self, warnings: Vec<String>) -> Result<Report, RunError> {
        if !self.dry_run {
            self.cache.save()?;
        }
        self.report.warnings.extend(warnings);
        let _ = self.cfg;
        Ok(self.report)
    }
}

fn texts(
    backend: &dyn Backend,
    snap: &Snapshot,
    register: &dyn AddressRegister,
    today: Date,
) -> Result<HashMap<Uuid, String>, DarError> {
    crate::dar::texts_for_export(backend, register, Ix::dar_ids(snap, today))
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

/// The full export.
pub fn export(
    backend: &dyn Backend,
    register: &dyn AddressRegister,
    cfg: &Config,
    today: Date,
    dry_run: bool,
) -> Result<Report, RunError> {
    let mut c = ctx(cfg, dry_run)?;
    // OS2Sync reads FK Organisation in the background while MO is read.
    let job = c.api.start_hierarchy()?;
    let snap = Snapshot::read(backend, today, None)?;
    let texts = texts(backend, &snap, register, today)?;
    let mut ix = Ix::new(&snap, cfg, today, &texts)?;
    let units = ix.units();
    let users = ix.users()?;
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
            ix.warnings
                .push("autowash: MO yields no units; nothing is deleted".into());
        } else {
            for gone in fk.units.iter().filter(|u| !mo_units.contains(u)) {
                if *gone == cfg.top_unit || Some(*gone) == top_fk {
                    ix.warnings
                        .push(format!("autowash: the top unit {gone} is never deleted"));
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
        ix.warnings
            .push("MO yields no users; no user is deleted in OS2Sync".into());
    } else {
        for gone in fk.users.iter().filter(|u| !mo_users.contains(u)) {
            c.delete("user", *gone, true);
        }
    }
    c.finish(std::mem::take(&mut ix.warnings))
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
    let mut c = ctx(cfg, dry_run)?;
    let snap = Snapshot::read(backend, today, Some(&[]))?;
    let texts = texts(backend, &snap, register, today)?;
    let mut ix = Ix::new(&snap, cfg, today, &texts)?;
    let payload = ix.unit(unit).ok_or(RunError::NotSynced(unit))?;
    c.upsert_unit(&payload, false);
    c.finish(std::mem::take(&mut ix.warnings))
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
    let mut c = ctx(cfg, dry_run)?;
    let snap = Snapshot::read(backend, today, Some(&[person]))?;
    let texts = texts(backend, &snap, register, today)?;
    let mut ix = Ix::new(&snap, cfg, today, &texts)?;
    let users = ix.users_of(person)?;
    if users.is_empty() {
        c.delete("user", person, false);
    }
    for u in &users {
        c.upsert_user(u, false);
    }
    c.finish(std::mem::take(&mut ix.warnings))
}

/// Does OS2Sync answer (with our CVR and ApiKey)? Starts a harmless hierarchy job.
pub fn ping(cfg: &Config) -> Result<Uuid, ApiError> {
    Api::new(cfg).start_hierarchy()
}
