//! Finding OPUS dumps: files named `ZLPE<YYYYMMDDhhmmss>_delta.xml` in a folder, or on a remote
//! source (an SMB share, a Google Cloud Storage bucket; see [`list_source_dumps`]), ordered by
//! the timestamp in the name. Other names are skipped with a warning naming them. A leading
//! `production/` is removed from an object name before its timestamp is read (OPUS's GCS
//! buckets keep the dumps there), but the real name is what is downloaded.
//!
//! Remote dumps are downloaded on demand into a spool folder (next to the run database) and
//! imported from there, so the import itself always reads local files: [`fetch_dumps`] streams
//! the ones a run needs (skipping those already spooled with the same size), and
//! [`prune_spool`] removes spooled dumps older than the last imported one.

use crate::transport::source::{Source, SourceError};
use jiff::civil::DateTime;
use std::path::{Path, PathBuf};

/// One dump file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpFile {
    pub path: PathBuf,
    pub name: String,
    pub timestamp: DateTime,
}

/// The timestamp in a dump's file name, `None` when the name does not follow the pattern.
pub fn dump_timestamp(name: &str) -> Option<DateTime> {
    let stamp = name.strip_prefix("ZLPE")?.strip_suffix("_delta.xml")?;
    if stamp.len() != 14 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    DateTime::strptime("%Y%m%d%H%M%S", stamp).ok()
}

/// The part of a file or object name that is the dump's name: without a leading `production/`.
pub fn dump_name(name: &str) -> &str {
    name.strip_prefix("production/").unwrap_or(name)
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("cannot list OPUS dumps in {path}: {error}")]
    List {
        path: String,
        /// Not a `source()`: the message shows it, and error chains are printed once.
        error: std::io::Error,
    },
    #[error("cannot list OPUS dumps in {source_name}: {error}")]
    Remote {
        source_name: String,
        /// Not a `source()`: the message shows it, and error chains are printed once.
        error: Box<SourceError>,
    },
    #[error("cannot download OPUS dump {name} from {source_name}: {error}")]
    Fetch {
        name: String,
        source_name: String,
        /// Not a `source()`: the message shows it, and error chains are printed once.
        error: Box<SourceError>,
    },
    #[error("spool folder {path}: {error}")]
    Spool {
        path: String,
        /// Not a `source()`: the message shows it, and error chains are printed once.
        error: std::io::Error,
    },
    #[error("{first} and {second} carry the same timestamp; remove one of them")]
    Duplicate { first: String, second: String },
}

/// Dumps as (timestamp, name, item), oldest first, and the names skipped.
type Picked<T> = (Vec<(DateTime, String, T)>, Vec<String>);

/// Sort `(name, item)` pairs into dumps (oldest first) and skipped names; two dumps with the
/// same timestamp are an error. The one place the dump-name rules are applied.
fn pick<T>(entries: Vec<(String, T)>) -> Result<Picked<T>, FilesError> {
    let mut dumps = Vec::new();
    let mut skipped = Vec::new();
    for (name, item) in entries {
        match dump_timestamp(dump_name(&name)) {
            Some(timestamp) => dumps.push((timestamp, name, item)),
            None => skipped.push(name),
        }
    }
    dumps.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    for w in dumps.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(FilesError::Duplicate {
                first: w[0].1.clone(),
                second: w[1].1.clone(),
            });
        }
    }
    skipped.sort();
    Ok((dumps, skipped))
}

/// List the dumps in `dir`, oldest first, and the names that were skipped.
pub fn list_dumps(dir: &Path) -> Result<(Vec<DumpFile>, Vec<String>), FilesError> {
    let err = |source| FilesError::List {
        path: dir.display().to_string(),
        error: source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        if !entry.file_type().map_err(err)?.is_file() {
            continue;
        }
        entries.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    let (dumps, skipped) = pick(entries)?;
    let dumps = dumps
        .into_iter()
        .map(|(timestamp, name, path)| DumpFile {
            path,
            name,
            timestamp,
        })
        .collect();
    Ok((dumps, skipped))
}

/// A dump on a remote source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteDump {
    /// The dump as the import sees it: its name without `production/`, and its path in the
    /// spool folder (which exists only once fetched).
    pub dump: DumpFile,
    /// The name on the source (what is downloaded).
    pub remote: String,
    /// Its size on the source, when the source tells.
    pub size: Option<u64>,
}

/// List the dumps on `source`, oldest first, with their places in the `spool` folder, and the
/// names that were skipped.
pub fn list_source_dumps(
    source: &Source,
    spool: &Path,
) -> Result<(Vec<RemoteDump>, Vec<String>), FilesError> {
    let files = source.list().map_err(|source_err| FilesError::Remote {
        source_name: source.describe(),
        error: Box::new(source_err),
    })?;
    let (dumps, skipped) = pick(files.into_iter().map(|f| (f.name, f.size)).collect())?;
    let dumps = dumps
        .into_iter()
        .map(|(timestamp, remote, size)| {
            let name = dump_name(&remote).to_string();
            RemoteDump {
                dump: DumpFile {
                    path: spool.join(&name),
                    name,
                    timestamp,
                },
                remote,
                size,
            }
        })
        .collect();
    Ok((dumps, skipped))
}

/// Download `dumps` from `source` into the spool folder (created if needed), streamed; a dump
/// already spooled with the same size is not downloaded again. Returns how many were downloaded.
pub fn fetch_dumps(source: &Source, dumps: &[&RemoteDump]) -> Result<usize, FilesError> {
    let mut fetched = 0;
    for d in dumps {
        if let Some(dir) = d.dump.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| FilesError::Spool {
                path: dir.display().to_string(),
                error: e,
            })?;
        }
        if let (Ok(meta), Some(size)) = (std::fs::metadata(&d.dump.path), d.size)
            && meta.is_file()
            && meta.len() == size
        {
            continue;
        }
        tracing::info!("downloading {} from {}", d.remote, source.describe());
        source
            .fetch(&d.remote, &d.dump.path)
            .map_err(|e| FilesError::Fetch {
                name: d.remote.clone(),
                source_name: source.describe(),
                error: Box::new(e),
            })?;
        fetched += 1;
    }
    Ok(fetched)
}

/// Remove spooled dumps (and left-over `.part` files of them) older than `keep_from`; returns
/// the names removed. Other files in the folder are left alone.
pub fn prune_spool(spool: &Path, keep_from: DateTime) -> Result<Vec<String>, FilesError> {
    let err = |e| FilesError::Spool {
        path: spool.display().to_string(),
        error: e,
    };
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(spool) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(err(e)),
    };
    for entry in entries {
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let base = name.strip_suffix(".part").unwrap_or(&name);
        if let Some(t) = dump_timestamp(base)
            && t < keep_from
            && entry.file_type().map_err(err)?.is_file()
        {
            std::fs::remove_file(entry.path()).map_err(err)?;
            removed.push(name);
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn names_follow_the_pattern() {
        assert_eq!(
            dump_timestamp("ZLPE20190902224224_delta.xml"),
            Some(date(2019, 9, 2).at(22, 42, 24, 0))
        );
        assert_eq!(dump_timestamp("ZLPE20200101_delta.xml"), None);
        assert_eq!(dump_timestamp("ZLPB20100101145823.xml"), None);
        assert_eq!(
            dump_timestamp("ZLPE20191302224224_delta.xml"),
            None,
            "month 13"
        );
        assert_eq!(dump_timestamp("ZLPE2019090222422x_delta.xml"), None);
    }

    #[test]
    fn listing_sorts_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "ZLPE20200102220000_delta.xml",
            "ZLPE20200101220000_delta.xml",
            "notes.txt",
            "ZLPE2020_delta.xml",
        ] {
            std::fs::write(dir.path().join(n), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("ZLPE20200103220000_delta.xml")).unwrap();
        let (dumps, skipped) = list_dumps(dir.path()).unwrap();
        let names: Vec<_> = dumps.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ZLPE20200101220000_delta.xml",
                "ZLPE20200102220000_delta.xml"
            ]
        );
        assert_eq!(skipped, ["ZLPE2020_delta.xml", "notes.txt"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(list_dumps(empty.path()).unwrap().0.is_empty());
        assert!(
            list_dumps(&empty.path().join("missing"))
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
    }

    #[test]
    fn remote_listing_strips_production_and_spools_by_size() {
        let remote = tempfile::tempdir().unwrap();
        let spool = tempfile::tempdir().unwrap();
        let spool = spool.path().join("opus-dumps");
        std::fs::write(remote.path().join("ZLPE20200102220000_delta.xml"), "new").unwrap();
        std::fs::write(remote.path().join("ZLPE20200101220000_delta.xml"), "old!").unwrap();
        std::fs::write(remote.path().join("readme"), "x").unwrap();
        let src = Source::Local(remote.path().to_path_buf());
        let (dumps, skipped) = list_source_dumps(&src, &spool).unwrap();
        assert_eq!(skipped, ["readme"]);
        assert_eq!(dumps[0].dump.name, "ZLPE20200101220000_delta.xml");
        assert_eq!(dumps[0].size, Some(4));
        assert_eq!(
            dumps[1].dump.path,
            spool.join("ZLPE20200102220000_delta.xml")
        );
        assert_eq!(fetch_dumps(&src, &[&dumps[0], &dumps[1]]).unwrap(), 2);
        assert_eq!(
            fetch_dumps(&src, &[&dumps[0], &dumps[1]]).unwrap(),
            0,
            "same sizes"
        );
        std::fs::write(&dumps[1].dump.path, "changed").unwrap();
        assert_eq!(fetch_dumps(&src, &[&dumps[1]]).unwrap(), 1);
        assert_eq!(std::fs::read(&dumps[1].dump.path).unwrap(), b"new");
        std::fs::write(spool.join("ZLPE20190101220000_delta.xml.part"), "").unwrap();
        std::fs::write(spool.join("keep.txt"), "").unwrap();
        let removed = prune_spool(&spool, dumps[1].dump.timestamp).unwrap();
        assert_eq!(
            removed,
            [
                "ZLPE20190101220000_delta.xml.part",
                "ZLPE20200101220000_delta.xml"
            ]
        );
        assert!(spool.join("keep.txt").exists());

        assert_eq!(
            dump_name("production/ZLPE20200101220000_delta.xml"),
            "ZLPE20200101220000_delta.xml"
        );
        let (dumps, _) = pick(vec![
            ("production/ZLPE20200101220000_delta.xml".to_string(), ()),
            ("test/ZLPE20200102220000_delta.xml".to_string(), ()),
        ])
        .unwrap();
        assert_eq!(dumps.len(), 1);
        assert!(matches!(
            pick(vec![
                ("production/ZLPE20200101220000_delta.xml".to_string(), ()),
                ("ZLPE20200101220000_delta.xml".to_string(), ()),
            ]),
            Err(FilesError::Duplicate { .. })
        ));
    }
}
