//! Writing the five files: `;`-separated, every field quoted (`"` doubled inside), CRLF line
//! ends, UTF-8 without BOM, the header even when there are no rows. All five are written under
//! temporary names first and then renamed, so a failed export never leaves half files and the
//! previous export stays whole until the new one is complete.

use super::map::Table;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {error}")]
pub struct WriteError {
    pub path: String,
    /// Not a `source()`: the message shows it already.
    pub error: std::io::Error,
}

/// The bytes of one file.
pub fn csv_bytes(t: &Table) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to memory cannot fail.
    w.write_record(t.header).expect("in memory");
    for r in &t.rows {
        w.write_record(r).expect("in memory");
    }
    w.into_inner().expect("in memory")
}

/// Write every table into `dir` (created if missing); returns the final paths.
pub fn write_dir(dir: &Path, tables: &[Table]) -> Result<Vec<PathBuf>, WriteError> {
    let err = |p: &Path| {
        let path = p.display().to_string();
        move |error| WriteError { path, error }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let mut temps = Vec::new();
    for t in tables {
        let tmp = dir.join(format!(".{}.tmp", t.name));
        let result = std::fs::File::create(&tmp).and_then(|mut f| {
            std::io::Write::write_all(&mut f, &csv_bytes(t)).and_then(|_| f.sync_all())
        });
        if let Err(e) = result {
            for (tmp, _) in &temps {
                let _ = std::fs::remove_file(tmp);
            }
            let _ = std::fs::remove_file(&tmp);
            return Err(err(&tmp)(e));
        }
        temps.push((tmp, dir.join(t.name)));
    }
    let mut out = Vec::new();
    for (tmp, path) in temps {
        std::fs::rename(&tmp, &path).map_err(err(&path))?;
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_crlf_utf8_and_empty_tables() {
        let t = Table {
            name: "x.csv",
            header: &["A", "Primær"],
            rows: vec![
                vec!["say \"hi\"".into(), String::new()],
                vec!["a;b".into(), "æ\nø".into()],
            ],
        };
        assert_eq!(
            csv_bytes(&t),
            "\"A\";\"Primær\"\r\n\"say \"\"hi\"\"\";\"\"\r\n\"a;b\";\"æ\nø\"\r\n".as_bytes()
        );
        let empty = Table {
            name: "e.csv",
            header: &["A"],
            rows: vec![],
        };
        assert_eq!(csv_bytes(&empty), b"\"A\"\r\n");
    }

    #[test]
    fn files_appear_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let t = Table {
            name: "a.csv",
            header: &["A"],
            rows: vec![vec!["1".into()]],
        };
        let paths = write_dir(dir.path(), std::slice::from_ref(&t)).unwrap();
        assert_eq!(std::fs::read(&paths[0]).unwrap(), b"\"A\"\r\n\"1\"\r\n");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.csv".to_string()], "no temporary files left");
        // A table that cannot be written (its name is a folder) leaves the earlier file as it was.
        std::fs::create_dir(dir.path().join(".b.csv.tmp")).unwrap();
        let bad = Table {
            name: "b.csv",
            header: &["B"],
            rows: vec![],
        };
        let new_a = Table {
            name: "a.csv",
            header: &["A"],
            rows: vec![vec!["2".into()]],
        };
        assert!(write_dir(dir.path(), &[new_a, bad]).is_err());
        assert_eq!(
            std::fs::read(dir.path().join("a.csv")).unwrap(),
            b"\"A\"\r\n\"1\"\r\n"
        );
        assert!(!dir.path().join(".a.csv.tmp").exists());
    }
}
