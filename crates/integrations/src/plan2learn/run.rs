//! One plan2learn export: read MO, look up the texts of the units' DAR addresses, build the five
//! tables and write them atomically into a folder.

use super::map::{self, Config, Export, ExportError};
use super::read::Snapshot;
use super::write::{self, WriteError};
use crate::common::report::{Problem, Summary};
use crate::dar::{AddressRegister, DarError};
use dipex_backend::{Backend, BackendError};
use dipex_model::Date;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("reading MO: {0}")]
    Backend(BackendError),
    #[error("the address register: {0}")]
    Dar(DarError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("writing the files: {0}")]
    Write(WriteError),
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

impl From<WriteError> for RunError {
    fn from(e: WriteError) -> RunError {
        RunError::Write(e)
    }
}

/// What an export wrote.
#[derive(Debug)]
pub struct Report {
    pub export: Export,
    pub paths: Vec<PathBuf>,
}

impl Report {
    /// The run in the one report shape: the warnings as [`Problem`]s, the rows per file.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::new("plan2learn export", false);
        for w in &self.export.warnings {
            s.problems.push(Problem::warning("plan2learn", w.as_str()));
        }
        s.counts = self
            .export
            .tables
            .iter()
            .map(|t| (t.rows.len(), t.name.trim_end_matches(".csv")))
            .collect();
        s
    }
}

/// Build the export for `today` (nothing written).
pub fn build(
    backend: &dyn Backend,
    register: &dyn AddressRegister,
    cfg: &Config,
    today: Date,
) -> Result<Export, RunError> {
    let snap = Snapshot::read(backend, today)?;
    let texts = crate::dar::texts_for_export(backend, register, map::dar_ids(&snap, today))?;
    Ok(map::export(&snap, cfg, today, &texts)?)
}

/// Build the export and write the five files into `out`.
pub fn run(
    backend: &dyn Backend,
    register: &dyn AddressRegister,
    cfg: &Config,
    today: Date,
    out: &Path,
) -> Result<Report, RunError> {
    let export = build(backend, register, cfg, today)?;
    let paths = write::write_dir(out, &export.tables)?;
    Ok(Report { export, paths })
}
