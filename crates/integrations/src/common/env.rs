//! The clock and identity sources of a run, supplied by the CLI (tests give fixed ones), so
//! that nothing below the CLI reads the clock or makes random uuids by itself.

use jiff::civil::DateTime;
use uuid::Uuid;

/// The clock and identity sources, supplied by the CLI (tests give fixed ones).
pub trait Env {
    /// Local wall-clock time, for the run history.
    fn now(&self) -> DateTime;
    /// The registration time of writes.
    fn timestamp(&self) -> jiff::Timestamp;
    /// A uuid for a new person no register knows.
    fn new_uuid(&mut self) -> Uuid;
}
