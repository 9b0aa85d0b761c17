//! MO backends: the [`Backend`] trait every integration reads and writes MO through, and the
//! embedded bitemporal [`store::Store`] (one SQLite file), the default backend, and the OS2mo GraphQL
//! v30 backend [`os2mo::Os2mo`]; callers never know which one they have.

pub mod os2mo;
pub mod pull;
pub mod query;
pub mod store;

pub use os2mo::Os2mo;
pub use query::{Query, Window};
pub use store::Store;

use dipex_model::plan::{ApplyError, Counts};
use dipex_model::{Kind, Object, Plan};
use uuid::Uuid;

/// Who wrote a plan and when: the registration time of the bitemporal store. The CLI, which
/// alone reads the clock, provides it.
#[derive(Clone, Debug)]
pub struct Registration {
    pub at: jiff::Timestamp,
    pub actor: String,
    pub note: String,
}

/// What a backend can fail with. Messages never contain CPR numbers or secrets.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("store {path}: {error}")]
    Sqlite {
        path: String,
        /// Not a `source()`: the message shows it, and error chains are printed once.
        error: rusqlite::Error,
    },
    #[error("store {path}: object {uuid}: stored data is unreadable: {reason}")]
    Corrupt {
        path: String,
        uuid: String,
        reason: String,
    },
    #[error("store {path}: {error}; nothing was written")]
    Apply {
        path: String,
        /// Not a `source()`: the message shows it, and error chains are printed once.
        error: ApplyError,
    },
    #[error("store {path} has schema version {found}, this dipex knows {expected}")]
    Schema {
        path: String,
        found: String,
        expected: String,
    },
    #[error(transparent)]
    Os2mo(#[from] os2mo::Os2moError),
}

impl BackendError {
    /// True when the failed write had already applied part of the plan (exit code 3).
    pub fn partly_applied(&self) -> bool {
        matches!(self, BackendError::Os2mo(e) if e.partly_applied())
    }
}

/// An operation of a plan that MO did not take: refused for a reason tied to the object (an
/// OS2mo validation `error_key`), or not sent because it depends on such an object. Never holds
/// a CPR number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub uuid: Uuid,
    pub kind: Kind,
    /// The operation as `--dry-run` prints it.
    pub op: String,
    /// MO's `error_key` (`V_INVALID_ADDRESS_DAR`, …); `None` for a skipped dependent.
    pub error_key: Option<String>,
    /// MO's description, or why the operation was not sent.
    pub reason: String,
    /// For a skipped operation: the refused (or skipped) object it depends on.
    pub because: Option<Uuid>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = self.op.split_whitespace().collect::<Vec<_>>().join(" ");
        match &self.error_key {
            Some(k) => write!(f, "{op}: refused by MO: {k} ({})", self.reason),
            None => write!(f, "{op}: not written: {}", self.reason),
        }
    }
}

/// What `apply` did: the writes made, and the operations MO refused (with those skipped because
/// they depend on a refused object). The embedded store never refuses a single operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub counts: Counts,
    pub refused: Vec<Refused>,
}

impl Applied {
    /// The uuids of every refused or skipped object.
    pub fn refused_uuids(&self) -> std::collections::HashSet<Uuid> {
        self.refused.iter().map(|r| r.uuid).collect()
    }
}

/// The interface to MO. Reads select by kind plus uuid / user_key / CPR / parent / person /
/// org unit, at a date, over a window or over all history, and return objects sorted by uuid
/// with the slices that overlap the window. `apply` writes a plan: the embedded store all or
/// nothing; OS2mo everything but the operations it refuses for a reason tied to one object (and
/// those depending on them), which come back in [`Applied::refused`].
pub trait Backend {
    fn read(&self, query: &Query) -> Result<Vec<Object>, BackendError>;
    /// Takes the plan by value so a backend can free each operation once it is written.
    fn apply(&mut self, plan: Plan, registration: &Registration) -> Result<Applied, BackendError>;
    /// A one-line description for logs and `dipex check` (no secrets).
    fn describe(&self) -> String;

    /// The address texts MO itself resolves for the DAR addresses it holds now (a real OS2mo
    /// answers `Address.resolve` with a `DARAddress`), by DAR id. `Ok(None)`: this backend does
    /// not resolve addresses (the embedded store, a `mo pull` mirror): ask the address register.
    fn dar_texts(
        &self,
    ) -> Result<Option<std::collections::HashMap<uuid::Uuid, String>>, BackendError> {
        Ok(None)
    }
}
