//! Finding OPUS dumps: files named `ZLPE<YYYYMMDDhhmmss>_delta.xml` in a folder, ordered by the
//! timestamp in the name. Other names are skipped with a warning naming them.

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

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("cannot list OPUS dumps in {path}: {source}")]
    List {
        path: String,
        source: std::io::Error,
    },
    #[error("{first} and {second} carry the same timestamp; remove one of them")]
    Duplicate { first: String, second: String },
}

/// List the dumps in `dir`, oldest first, and the names that were skipped.
pub fn list_dumps(dir: &Path) -> Result<(Vec<DumpFile>, Vec<String>), FilesError> {
    let err = |source| FilesError::List {
        path: dir.display().to_string(),
        source,
    };
    let mut dumps = Vec::new();
    let mut skipped = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        if !entry.file_type().map_err(err)?.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        match dump_timestamp(&name) {
            Some(timestamp) => dumps.push(DumpFile {
                path: entry.path(),
                name,
                timestamp,
            }),
            None => skipped.push(name),
        }
    }
    dumps.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.name.cmp(&b.name)));
    for w in dumps.windows(2) {
        if w[0].timestamp == w[1].timestamp {
            return Err(FilesError::Duplicate {
                first: w[0].name.clone(),
                second: w[1].name.clone(),
            });
        }
    }
    skipped.sort();
    Ok((dumps, skipped))
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
}
