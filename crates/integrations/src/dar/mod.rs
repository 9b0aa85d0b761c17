//! The DAR address register: turns an address text and a postal code into the UUID of a DAR
//! address, or a definitive "no unambiguous match"; and back, a DAR address UUID into its text.
//!
//! Every importer that writes DAR addresses into MO goes through the [`AddressRegister`] trait.
//! There are three registers and two wrappers:
//!
//! * [`adressevaelger::Adressevaelger`] asks KDS' Adressevælger / Adressevask (`specs/dar.md`),
//!   the default since the public DAWA API closed in 2026;
//! * [`http::HttpRegister`] asks a DAWA-compatible web service (the `datavask` endpoints), for
//!   self-hosted DAWA mirrors;
//! * [`offline::OfflineRegister`] answers from a local CSV file in DAWA's export format;
//! * [`breaker::Breaker`] stops asking a register that keeps failing (or used up the run's time
//!   budget), so a dead or hanging register costs at most one timeout per run;
//! * [`cache::CachedRegister`] remembers every definitive answer in memory and in the register's
//!   own SQLite state database, which also holds the *pending* lookups: objects whose address
//!   lookup failed and must be tried again on the next run.
//!
//! The contract shared by all of them: `Ok(Lookup::Found(_))` and `Ok(Lookup::NotFound)` from
//! [`AddressRegister::lookup`], and `Ok(Some(_))` and `Ok(None)` from
//! [`AddressRegister::describe`], are definitive answers that may be cached; `Err(_)` is a failure
//! (network, server, file, breaker) that says nothing about the address and must never be cached
//! or reported as a miss.
//!
//! [`lookup_all`] asks many lookups at once over the register's connections (a scoped thread
//! pool; every distinct question once).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

pub mod adressevaelger;
pub mod breaker;
pub mod cache;
pub mod config;
pub mod http;
pub mod offline;

#[cfg(test)]
mod tests;

pub use adressevaelger::Adressevaelger;
pub use breaker::Breaker;
pub use cache::{CachedRegister, Pending};
pub use http::HttpRegister;
pub use offline::OfflineRegister;

/// Adressevælger's address, used when the settings name neither a file nor a service.
pub const DEFAULT_BASE_URL: &str = "https://adressevaelger.dk";

/// The token Adressevælger accepts until KDS introduces user management (`specs/dar.md` §1).
pub const DEFAULT_TOKEN: &str = "adressevaelger123";

/// The public DAWA hosts, closed in 2026: a `base_url` naming one of them means Adressevælger.
pub const CLOSED_DAWA_HOSTS: &[&str] = &["api.dataforsyningen.dk", "dawa.aws.dk"];

/// The timeout for one HTTP request when the settings give none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent connections to a web register when the settings give none.
pub const DEFAULT_CONNECTIONS: usize = 10;

/// Consecutive failures after which the breaker stops asking for the rest of the run.
pub const DEFAULT_MAX_FAILURES: u32 = 5;

/// Wall time after the first question after which the breaker stops asking.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(3600);

/// A register as the CLI builds it: the configured register behind the breaker and the cache.
pub type Register = CachedRegister<Breaker<Box<dyn AddressRegister>>>;

/// The answer to one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// Exactly one address matched; this is its DAR UUID.
    Found(uuid::Uuid),
    /// A definitive "no unambiguous match": no address, or several.
    NotFound,
}

impl Lookup {
    /// The UUID when found.
    pub fn uuid(self) -> Option<uuid::Uuid> {
        match self {
            Lookup::Found(id) => Some(id),
            Lookup::NotFound => None,
        }
    }
}

/// Something that can look up Danish addresses. Registers are shared by the threads of
/// [`lookup_all`], hence `Send + Sync`.
pub trait AddressRegister: Send + Sync {
    /// Look up one address.
    ///
    /// `street` like "Paradisæblevej 1" (may include floor/door, "Paradisæblevej 1, 2. tv"),
    /// `postal_code` like "8880".
    fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError>;

    /// The address text of a DAR address (or access address) id, in DAWA's `betegnelse` form:
    /// "Vejnavn 12, 2. tv, Tillægsby, 8000 Bynavn" (floor/door and supplementary town name only
    /// when the address has them). `Ok(None)` = definitively no such address.
    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError>;

    /// [`describe`](Self::describe) for many ids: every id of `ids` is a key of the answer.
    /// Registers with bulk lookups override this.
    fn describe_many(
        &self,
        ids: &[uuid::Uuid],
    ) -> Result<HashMap<uuid::Uuid, Option<String>>, DarError> {
        ids.iter()
            .map(|id| Ok((*id, self.describe(*id)?)))
            .collect()
    }

    /// Ask the register whether it works (a health call, or one lookup); `Ok` says what
    /// answered.
    fn probe(&self) -> Result<String, DarError>;

    /// How many questions may be asked at once (the HTTP connections).
    fn connections(&self) -> usize {
        1
    }

    /// The objects of `importer` whose address lookup failed in an earlier run (kept in the
    /// register's state database; a register without one keeps none).
    fn pending(&self, importer: &str) -> Result<Vec<Pending>, DarError> {
        let _ = importer;
        Ok(Vec::new())
    }

    /// Drop the pending objects `resolved` of `importer` and add `added`; called only after
    /// the importer's writes succeeded (a register without a state database keeps nothing).
    fn update_pending(
        &self,
        importer: &str,
        resolved: &[String],
        added: &[Pending],
    ) -> Result<(), DarError> {
        let _ = (importer, resolved, added);
        Ok(())
    }
}

/// A boxed register and a borrowed one are registers too (every call forwarded).
macro_rules! forward_register {
    ($($ptr:ty),*) => {$(
        impl<R: AddressRegister + ?Sized> AddressRegister for $ptr {
            fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError> {
                (**self).lookup(street, postal_code)
            }

            fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError> {
                (**self).describe(id)
            }

            fn describe_many(
                &self,
                ids: &[uuid::Uuid],
            ) -> Result<HashMap<uuid::Uuid, Option<String>>, DarError> {
                (**self).describe_many(ids)
            }

            fn probe(&self) -> Result<String, DarError> {
                (**self).probe()
            }

            fn connections(&self) -> usize {
                (**self).connections()
            }

            fn pending(&self, importer: &str) -> Result<Vec<Pending>, DarError> {
                (**self).pending(importer)
            }

            fn update_pending(
                &self,
                importer: &str,
                resolved: &[String],
                added: &[Pending],
            ) -> Result<(), DarError> {
                (**self).update_pending(importer, resolved, added)
            }
        }
    )*};
}

forward_register!(Box<R>, &R);

/// The answers to many lookups, keyed by `(street, postal code)` as given.
pub type Answers = HashMap<(String, String), Result<Lookup, DarError>>;

/// Ask `register` about every `(street, postal code)` of `queries`, each distinct one once,
/// over [`AddressRegister::connections`] threads (one when the register has one connection or
/// there is little to ask). Failures are answers too (`Err`): one failed lookup never stops
/// the others.
pub fn lookup_all(
    register: &dyn AddressRegister,
    queries: impl IntoIterator<Item = (String, String)>,
) -> Answers {
    let mut seen = HashSet::new();
    let distinct: Vec<(String, String)> = queries
        .into_iter()
        .filter(|q| seen.insert(q.clone()))
        .collect();
    let answers = parallel(distinct.clone(), register.connections(), |(s, z)| {
        register.lookup(&s, &z)
    });
    distinct.into_iter().zip(answers).collect()
}

/// `f` of every item, over up to `workers` scoped threads (no threads for one worker or one
/// item); the results in the order of `items`.
pub(crate) fn parallel<T: Send, R: Send>(
    items: Vec<T>,
    workers: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let workers = workers.clamp(1, 64).min(items.len());
    if workers <= 1 {
        return items.into_iter().map(f).collect();
    }
    let total = items.len();
    let queue = Mutex::new(items.into_iter().enumerate());
    let done = Mutex::new(Vec::with_capacity(total));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((i, item)) = next else { break };
                    let r = f(item);
                    done.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// The texts of DAR ids for an export: from MO itself when the backend resolves addresses (a
/// real OS2mo's `Address.resolve`), else — and for ids MO could not resolve — from the register,
/// in bulk. Ids without a text are left out. A backend that fails to resolve is only a warning:
/// the register answers instead.
pub fn texts_for_export(
    backend: &dyn dipex_backend::Backend,
    register: &dyn AddressRegister,
    ids: impl IntoIterator<Item = uuid::Uuid>,
) -> Result<HashMap<uuid::Uuid, String>, DarError> {
    let mut ids: Vec<uuid::Uuid> = ids.into_iter().collect();
    ids.sort();
    ids.dedup();
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    match backend.dar_texts() {
        Ok(Some(mut resolved)) => {
            for id in &ids {
                if let Some(text) = resolved.remove(id) {
                    out.insert(*id, text);
                }
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(
            "MO could not resolve its DAR addresses ({e}); asking the address register instead"
        ),
    }
    let missing: Vec<uuid::Uuid> = ids.into_iter().filter(|id| !out.contains_key(id)).collect();
    if !missing.is_empty() {
        for (id, text) in register.describe_many(&missing)? {
            if let Some(text) = text {
                out.insert(id, text);
            }
        }
    }
    Ok(out)
}

/// Why a lookup or description, or setting up a register, failed.
///
/// URLs in messages never carry credentials; file errors name the file and, where there is one,
/// the line.
#[derive(Debug, thiserror::Error)]
pub enum DarError {
    /// The base URL in the settings is not usable.
    #[error("invalid DAR base URL {url}: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    /// The request did not get an HTTP answer: DNS, connection, TLS, timeout or I/O.
    #[error("DAR request to {url} failed: {message}")]
    Transport { url: String, message: String },
    /// The service answered with an HTTP status that is not a definitive answer.
    #[error("DAR request to {url} failed with HTTP status {status}")]
    Status { url: String, status: u16 },
    /// The service answered 2xx, but the body is not the expected JSON (a datavask answer, or an
    /// address with a `betegnelse`).
    #[error("DAR response from {url} is not the expected JSON: {message}")]
    BadResponse { url: String, message: String },
    /// The offline address file could not be read.
    #[error("cannot read DAR address file {}: {error}", path.display())]
    Io {
        path: PathBuf,
        /// Not a `source()`: the message shows it, and error chains are printed once.
        error: std::io::Error,
    },
    /// The offline address file has a bad header or row.
    #[error("DAR address file {}, line {line}: {message}", path.display())]
    File {
        path: PathBuf,
        line: u64,
        message: String,
    },
    /// The SQLite DAR state database could not be opened, read or written.
    #[error("DAR state database {}: {message}", path.display())]
    Cache { path: PathBuf, message: String },
    /// The breaker stopped asking the register for the rest of the run.
    #[error("the address register is not asked any more this run: {reason}")]
    Unavailable { reason: String },
}

impl DarError {
    /// A short reason that names no address (the URL of a lookup holds the address, which for
    /// an employee is personal data).
    pub fn reason(&self) -> String {
        match self {
            DarError::Transport { message, .. } => {
                format!("address register unreachable: {message}")
            }
            DarError::Status { status, .. } => format!("address register answered HTTP {status}"),
            DarError::BadResponse { .. } => "address register gave an unreadable answer".into(),
            other => other.to_string(),
        }
    }
}

/// Which web protocol `base_url` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// KDS' Adressevælger / Adressevask (`specs/dar.md`).
    Adressevaelger,
    /// A DAWA-compatible service with the `datavask` endpoints (a self-hosted DAWA mirror).
    Dawa,
}

impl Protocol {
    /// The protocol named by a setting value (`adressevaelger`, `dawa`; any case).
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.trim().to_ascii_lowercase().as_str() {
            "adressevaelger" | "adressevælger" | "adressevask" => Some(Protocol::Adressevaelger),
            "dawa" | "datavask" => Some(Protocol::Dawa),
            _ => None,
        }
    }
}

/// How to reach the address register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DarSettings {
    /// Which protocol the web service speaks; `None`: DAWA when `base_url` names a service
    /// other than the closed public DAWA (settings written before Adressevælger), else
    /// Adressevælger.
    pub protocol: Option<Protocol>,
    /// Base URL of the service; `None` means [`DEFAULT_BASE_URL`] (Adressevælger).
    pub base_url: Option<String>,
    /// A local address file (DAWA CSV export); when set, it is used instead of the service.
    pub address_file: Option<PathBuf>,
    /// Timeout for one HTTP request.
    pub timeout: Duration,
    /// Adressevælger's `token` (never logged); `None` means [`DEFAULT_TOKEN`].
    pub token: Option<String>,
    /// Concurrent connections to the web service.
    pub connections: usize,
    /// Consecutive failures that stop the register for the rest of the run.
    pub max_failures: u32,
    /// Wall time after the first question after which the register is not asked any more.
    pub time_budget: Duration,
}

impl Default for DarSettings {
    fn default() -> Self {
        DarSettings {
            protocol: None,
            base_url: None,
            address_file: None,
            timeout: DEFAULT_TIMEOUT,
            token: None,
            connections: DEFAULT_CONNECTIONS,
            max_failures: DEFAULT_MAX_FAILURES,
            time_budget: DEFAULT_TIME_BUDGET,
        }
    }
}

/// Whether `url` names one of the closed public DAWA hosts.
fn is_closed_dawa(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let host = lower
        .split("://")
        .nth(1)
        .unwrap_or(&lower)
        .split(['/', '?', ':'])
        .next()
        .unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    CLOSED_DAWA_HOSTS.contains(&host)
}

impl DarSettings {
    /// The web protocol and base URL these settings choose (see [`DarSettings::protocol`]).
    pub fn web(&self) -> (Protocol, &str) {
        let explicit = self.base_url.as_deref().filter(|u| !is_closed_dawa(u));
        match (self.protocol, explicit) {
            (Some(p), Some(u)) => (p, u),
            (Some(Protocol::Dawa), None) => (
                Protocol::Dawa,
                self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            ),
            (Some(Protocol::Adressevaelger), None) | (None, None) => {
                (Protocol::Adressevaelger, DEFAULT_BASE_URL)
            }
            (None, Some(u)) => (Protocol::Dawa, u),
        }
    }

    /// Whether `base_url` names the closed public DAWA (and is replaced by Adressevælger).
    pub fn names_closed_dawa(&self) -> bool {
        self.base_url.as_deref().is_some_and(is_closed_dawa)
            && self.protocol != Some(Protocol::Dawa)
    }

    /// What the register is, for logs (never the token).
    pub fn describe(&self) -> String {
        if let Some(f) = &self.address_file {
            return format!("offline address file {}", f.display());
        }
        match self.web() {
            (Protocol::Adressevaelger, u) => format!("Adressevælger at {u}"),
            (Protocol::Dawa, u) => format!("DAWA-compatible service {u}"),
        }
    }
}

/// The register the settings ask for: the offline file when one is set, otherwise the web
/// service [`DarSettings::web`] chooses.
pub fn register_from_settings(s: &DarSettings) -> Result<Box<dyn AddressRegister>, DarError> {
    if let Some(path) = &s.address_file {
        return Ok(Box::new(OfflineRegister::load(path)?));
    }
    match s.web() {
        (Protocol::Adressevaelger, base) => Ok(Box::new(Adressevaelger::new(
            base,
            s.token.as_deref().unwrap_or(DEFAULT_TOKEN),
            s.timeout,
            s.connections,
        )?)),
        (Protocol::Dawa, base) => Ok(Box::new(HttpRegister::with_connections(
            base,
            s.timeout,
            s.connections,
        )?)),
    }
}

/// The register the settings ask for, behind the breaker and the cache in the SQLite state
/// database `state` (see [`CachedRegister::new`] for `read_only`).
pub fn open(
    s: &DarSettings,
    state: &std::path::Path,
    read_only: bool,
) -> Result<Register, DarError> {
    let inner = register_from_settings(s)?;
    CachedRegister::new(
        Breaker::new(inner, s.max_failures, s.time_budget),
        state,
        read_only,
    )
}
