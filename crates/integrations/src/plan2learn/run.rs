//! One plan2learn export through the job driver (`crate::job::export`): read MO, look up the
//! texts of the units' DAR addresses, build the five tables and write them atomically into a
//! folder.

use super::map::{self, Config, Export, ExportError};
use super::read::Snapshot;
use super::write::{self, WriteError};
use crate::common::report::{Problem, Summary};
use crate::dar::{AddressRegister, DarError};
use dipex_backend::{Backend, BackendError};
use dipex_model::Date;
use std::collections::HashMap;
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

/// The plan2learn exporter the job driver runs: the sink writes the five files into `out`
/// (none when `out` is `None`).
struct Exporter<'a> {
    cfg: &'a Config,
    today: Date,
    out: Option<&'a Path>,
}

impl crate::job::Export for Exporter<'_> {
    type Snapshot = Snapshot;
    type Output = Export;
    type Report = Report;
    type Error = RunError;

    fn read(&mut self, backend: &dyn Backend) -> Result<Snapshot, RunError> {
        Ok(Snapshot::read(backend, self.today)?)
    }

    fn addresses(&self, snapshot: &Snapshot) -> Vec<uuid::Uuid> {
        map::dar_ids(snapshot, self.today)
    }

    fn map(
        &mut self,
        snapshot: Snapshot,
        texts: &HashMap<uuid::Uuid, String>,
    ) -> Result<Export, RunError> {
        Ok(map::export(&snapshot, self.cfg, self.today, texts)?)
    }

    fn sink(&mut self, export: Export) -> Result<Report, RunError> {
        let paths = match self.out {
            Some(out) => write::write_dir(out, &export.tables)?,
            None => Vec::new(),
        };
        Ok(Report { export, paths })
    }
}

/// Build the export for `today` (nothing written).
pub fn build(
    backend: &dyn Backend,
    register: &dyn AddressRegister,
    cfg: &Config,
    today: Date,
) -> Result<Export, RunError> {
    let mut exporter = Exporter {
        cfg,
        today,
        out: None,
    };
    Ok(crate::job::export(&mut exporter, backend, register)?.export)
}

/// Build the export and write the five files into `out`.
pub fn run(
    backend: &dyn Backend,
    register: &dyn AddressRegister,
    cfg: &Config,
    today: Date,
    out: &Path,
) -> Result<Report, RunError> {
    let mut exporter = Exporter {
        cfg,
        today,
        out: Some(out),
    };
    crate::job::export(&mut exporter, backend, register)
}
