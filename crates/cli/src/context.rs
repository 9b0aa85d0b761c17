//! What every command needs: settings from the file and the environment, the backend, the
//! clock, and `dipex check`.

use crate::Outcome;
use anyhow::{Context as _, Result, bail};
use dipex_backend::os2mo::{Auth, Config};
use dipex_backend::{Backend, Os2mo, Store};
use dipex_integrations::settings::Settings;
use std::path::{Path, PathBuf};

pub struct Context {
    pub settings: Settings,
    /// Where the settings came from, for messages.
    pub settings_source: String,
    /// `--store`, which forces the embedded store.
    store_override: Option<PathBuf>,
}

impl Context {
    pub fn new(settings: Option<&Path>, store: Option<&Path>) -> Result<Context> {
        let path = settings
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("DIPEX_SETTINGS").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("settings.json")).filter(|p| p.exists()));
        let text = match &path {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read settings file {}", p.display()))?,
            ),
            None => None,
        };
        let name = path.as_ref().map_or("(no settings file)".to_string(), |p| {
            p.display().to_string()
        });
        let json = text.as_deref().map(|t| (name.as_str(), t));
        let (settings, warnings) = Settings::load(json, std::env::vars())?;
        for w in warnings {
            tracing::warn!("{}", w.0);
        }
        Ok(Context {
            settings,
            settings_source: name,
            store_override: store.map(Path::to_path_buf),
        })
    }

    /// The backend: OS2mo when `mora.base` is set (and `--store` not given), else the embedded
    /// store.
    pub fn backend(&self) -> Result<Box<dyn Backend>> {
        if let Some(mo) = self.os2mo()? {
            return Ok(Box::new(mo));
        }
        let path = self
            .store_override
            .clone()
            .unwrap_or_else(|| self.settings.store.clone());
        Ok(Box::new(Store::open(&path)?))
    }

    /// The OS2mo client when `mora.base` is set and `--store` is not given.
    pub fn os2mo(&self) -> Result<Option<Os2mo>> {
        if self.store_override.is_some() {
            return Ok(None);
        }
        let Some(base) = &self.settings.mora.base else {
            return Ok(None);
        };
        Ok(Some(Os2mo::new(os2mo_config(&self.settings, base)?)?))
    }

    /// The OS2mo at `mora.base`, even with `--store` (for `mo pull`, which reads OS2mo and writes
    /// the store).
    pub fn os2mo_source(&self) -> Result<Option<Os2mo>> {
        let Some(base) = &self.settings.mora.base else {
            return Ok(None);
        };
        Ok(Some(Os2mo::new(os2mo_config(&self.settings, base)?)?))
    }

    /// The embedded store at `dipex.store` (or `--store`), even when `mora.base` is set.
    pub fn store(&self) -> Result<Store> {
        Ok(Store::open(&self.store_path())?)
    }

    /// The embedded store itself (for counts in `dipex check`).
    pub fn store_path(&self) -> PathBuf {
        self.store_override
            .clone()
            .unwrap_or_else(|| self.settings.store.clone())
    }
}

/// The OS2mo client's settings: `mora.*` plus Keycloak's `crontab.CLIENT_ID`/`CLIENT_SECRET`/
/// `AUTH_SERVER`/`AUTH_REALM` (or a `mora.session` header for development servers).
fn os2mo_config(s: &Settings, base: &str) -> Result<Config> {
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("mora.base must be an http:// or https:// URL, got {base:?}");
    }
    let auth = if let Some(session) = &s.mora.session {
        Auth::Session(session.expose().to_string())
    } else if let Some(secret) = &s.client_secret {
        let Some(server) = &s.auth_server else {
            bail!(
                "crontab.CLIENT_SECRET is set but not the Keycloak address: set crontab.AUTH_SERVER (or AUTH_SERVER), e.g. https://keycloak.kommune.dk/auth"
            );
        };
        Auth::ClientCredentials {
            auth_server: server.clone(),
            realm: s.auth_realm.clone(),
            client_id: s.client_id.clone(),
            client_secret: secret.expose().to_string(),
        }
    } else {
        bail!(
            "mora.base is set, but dipex has no credentials for OS2mo: set crontab.CLIENT_SECRET (or CLIENT_SECRET) \
             with crontab.AUTH_SERVER for Keycloak, or mora.session for a development server; \
             or use --store PATH to work on the embedded store"
        );
    };
    let mut cfg = Config::new(base, auth);
    cfg.version = s.mora.graphql_version;
    cfg.ca_file = s.mora.ca_file.clone();
    cfg.timeout = std::time::Duration::from_secs(s.mora.timeout_seconds.max(1));
    cfg.retries = s.mora.retries;
    cfg.batch_size = s.mora.batch_size.max(1);
    cfg.page_size = s.mora.page_size.max(1);
    cfg.concurrency = s.mora.concurrency.max(1);
    cfg.write_concurrency = s.mora.write_concurrency.max(1);
    Ok(cfg)
}

/// Local wall-clock time, new uuids: the production `Env` of the runners.
pub struct SystemEnv;

impl dipex_integrations::opus::run::Env for SystemEnv {
    fn now(&self) -> jiff::civil::DateTime {
        jiff::Zoned::now().datetime()
    }
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
    fn new_uuid(&mut self) -> uuid::Uuid {
        uuid::Uuid::new_v4()
    }
}

/// Today in Europe/Copenhagen.
pub fn today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .in_tz("Europe/Copenhagen")
        .map(|z| z.date())
        .unwrap_or_else(|_| jiff::Zoned::now().date())
}

/// `dipex check`: settings, backend and sources, one line each.
pub fn check(ctx: &Context) -> Result<Outcome> {
    let mut failed = 0;
    let mut line = |ok: bool, what: &str, detail: String| {
        if !ok {
            failed += 1;
        }
        println!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
    };
    line(true, "settings", ctx.settings_source.clone());
    match ctx.os2mo() {
        Ok(Some(mo)) => match mo.ping() {
            Ok(who) => line(true, "backend", format!("{}: {who}", mo.describe())),
            Err(e) => line(false, "backend", format!("{}: {e}", mo.describe())),
        },
        Ok(None) => match ctx.backend() {
            Ok(b) => {
                let counts = Store::open(&ctx.store_path())
                    .ok()
                    .and_then(|s| s.counts().ok())
                    .unwrap_or_default();
                let total: usize = counts.values().sum();
                line(
                    true,
                    "backend",
                    format!("{} ({total} objects)", b.describe()),
                );
            }
            Err(e) => line(false, "backend", format!("{e:#}")),
        },
        Err(e) => line(false, "backend", format!("{e:#}")),
    }
    match crate::dar::check(ctx) {
        Ok(what) => line(true, "address register", what),
        Err(e) => line(false, "address register", format!("{e:#}")),
    }
    let s = &ctx.settings;
    let remote_dumps = [&s.opus.smb_host, &s.opus.gcloud_bucket_name]
        .iter()
        .any(|v| v.as_deref().is_some_and(|v| !v.trim().is_empty()));
    if s.opus.xml_path.is_some() || remote_dumps {
        match crate::opus::describe_dumps(ctx) {
            Ok(what) => line(true, "opus dumps", what),
            Err(e) => line(false, "opus dumps", format!("{e:#}")),
        }
        match &s.municipality_name {
            Some(n) => line(true, "municipality.name", n.clone()),
            None => line(
                false,
                "municipality.name",
                "required by the OPUS import (it seeds every unit uuid)".into(),
            ),
        }
        match &s.opus.run_db {
            Some(p) => match dipex_integrations::opus::state::RunDb::open_existing(p) {
                Ok(Some(db)) => {
                    let status = db
                        .overview()
                        .map(|l| l.last().cloned().unwrap_or_default())
                        .unwrap_or_default();
                    line(true, "opus run_db", format!("{} {status}", p.display()))
                }
                Ok(None) => line(
                    true,
                    "opus run_db",
                    format!("{} (created by the first import)", p.display()),
                ),
                Err(e) => line(false, "opus run_db", e.to_string()),
            },
            None => line(
                false,
                "opus run_db",
                "integrations.opus.import.run_db is not set".into(),
            ),
        }
        if let Some(ad) = &s.ad {
            // The same one search an import makes: connect, bind, read every account.
            match dipex_integrations::ad::ldap::read_directory(ad) {
                Ok(d) => line(
                    true,
                    "active directory",
                    format!(
                        "{} accounts by CPR ({} entries in {} pages, {} CPRs with several accounts)",
                        d.len(),
                        d.stats.entries,
                        d.stats.pages,
                        d.ambiguous()
                    ),
                ),
                Err(e) => line(false, "active directory", e.to_string()),
            }
        }
    }
    if s.los.csv_folder.is_some() || s.los.ftp_url.is_some() {
        match crate::los::check(ctx) {
            Ok(what) => line(true, "los source", what),
            Err(e) => line(false, "los source", format!("{e:#}")),
        }
    }
    if s.plan2learn.host.is_some() {
        match crate::plan2learn::check(ctx) {
            Ok(what) => line(true, "plan2learn upload", what),
            Err(e) => line(false, "plan2learn upload", format!("{e:#}")),
        }
    }
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    tracing::info!("check: all ok");
    Ok(Outcome::Ok)
}
