//! The DAR address register: turns an address text and a postal code into the UUID of a DAR
//! address, or a definitive "no unambiguous match"; and back, a DAR address UUID into its text.
//!
//! Every importer that writes DAR addresses into MO goes through the [`AddressRegister`] trait.
//! There are two registers and one wrapper:
//!
//! * [`http::HttpRegister`] asks a DAWA-compatible web service (the `datavask` endpoints);
//! * [`offline::OfflineRegister`] answers from a local CSV file in DAWA's export format;
//! * [`cache::CachedRegister`] wraps either, remembering every definitive answer in memory and in
//!   the `dar_cache` and `dar_text` tables of a SQLite state file, so a nightly run asks the
//!   register only about addresses it has never seen.
//!
//! The contract shared by all of them: `Ok(Lookup::Found(_))` and `Ok(Lookup::NotFound)` from
//! [`AddressRegister::lookup`], and `Ok(Some(_))` and `Ok(None)` from
//! [`AddressRegister::describe`], are definitive answers that may be cached; `Err(_)` is a failure
//! (network, server, file) that says nothing about the address and must never be cached as a
//! miss.

use std::path::PathBuf;
use std::time::Duration;

pub mod cache;
pub mod http;
pub mod offline;

#[cfg(test)]
mod tests;

pub use cache::CachedRegister;
pub use http::HttpRegister;
pub use offline::OfflineRegister;

/// The base URL used when the settings name neither a file nor a service.
pub const DEFAULT_BASE_URL: &str = "https://api.dataforsyningen.dk";

/// The timeout for one HTTP request when the settings give none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Something that can look up Danish addresses.
pub trait AddressRegister {
    /// Look up one address.
    ///
    /// `street` like "Paradisæblevej 1" (may include floor/door, "Paradisæblevej 1, 2. tv"),
    /// `postal_code` like "8880".
    fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError>;

    /// The address text of a DAR address (or access address) id, in DAWA's `betegnelse` form:
    /// "Vejnavn 12, 2. tv, Tillægsby, 8000 Bynavn" (floor/door and supplementary town name only
    /// when the address has them). `Ok(None)` = definitively no such address.
    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError>;
}

impl<R: AddressRegister + ?Sized> AddressRegister for Box<R> {
    fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError> {
        (**self).lookup(street, postal_code)
    }

    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError> {
        (**self).describe(id)
    }
}

impl<R: AddressRegister + ?Sized> AddressRegister for &R {
    fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError> {
        (**self).lookup(street, postal_code)
    }

    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError> {
        (**self).describe(id)
    }
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
    /// The SQLite DAR cache could not be opened, read or written.
    #[error("DAR cache {}: {message}", path.display())]
    Cache { path: PathBuf, message: String },
}

/// How to reach the address register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DarSettings {
    /// Base URL of a DAWA-compatible service; `None` means [`DEFAULT_BASE_URL`].
    pub base_url: Option<String>,
    /// A local address file (DAWA CSV export); when set, it is used instead of the service.
    pub address_file: Option<PathBuf>,
    /// Timeout for one HTTP request.
    pub timeout: Duration,
}

impl Default for DarSettings {
    fn default() -> Self {
        DarSettings {
            base_url: None,
            address_file: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The register the settings ask for: the offline file when one is set, otherwise the HTTP
/// service at `base_url` (default [`DEFAULT_BASE_URL`]).
pub fn register_from_settings(s: &DarSettings) -> Result<Box<dyn AddressRegister>, DarError> {
    if let Some(path) = &s.address_file {
        return Ok(Box::new(OfflineRegister::load(path)?));
    }
    let base = s.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
    Ok(Box::new(HttpRegister::new(base, s.timeout)?))
}
