//! The OPUS state database (`integrations.opus.import.run_db`): the upstream `runs` table with
//! the same schema and status texts, so an existing `run_db.sqlite` keeps working, plus dipex's
//! own table of per-record digests of the last imported dump (so a daily run parses only the new
//! dump). A `Running …` row as the newest row blocks the next run until `dipex opus unblock`.

use super::parse::Digest;
use jiff::civil::DateTime;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("run database {path}: {error}")]
    Sqlite {
        path: String,
        /// Not a `source()`: the message shows it, and error chains are printed once.
        error: rusqlite::Error,
    },
    #[error("run database {path}: row {id} has an unreadable dump_date {value:?}")]
    BadDate {
        path: String,
        id: i64,
        value: String,
    },
}

/// One row of `runs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    pub id: i64,
    pub dump_date: String,
    pub status: String,
}

impl RunRow {
    pub fn is_running(&self) -> bool {
        self.status.contains("Running")
    }
}

/// Digests of the records of one imported dump.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    pub units: HashMap<String, Digest>,
    /// Employment id → digest and whether it was a leave marker.
    pub employees: HashMap<String, (Digest, bool)>,
}

pub struct RunDb {
    conn: Connection,
    path: String,
}

/// `str(datetime)` as Python writes it: microseconds only when not zero.
pub fn python_datetime(t: DateTime) -> String {
    let base = t.strftime("%Y-%m-%d %H:%M:%S").to_string();
    let micros = t.subsec_nanosecond() / 1000;
    if micros == 0 {
        base
    } else {
        format!("{base}.{micros:06}")
    }
}

fn parse_dump_date(s: &str) -> Option<DateTime> {
    let head = s.get(..19)?;
    DateTime::strptime("%Y-%m-%d %H:%M:%S", head).ok()
}

impl RunDb {
    /// Open the run database, creating the file and tables when missing.
    pub fn open(path: &Path) -> Result<RunDb, StateError> {
        let name = path.display().to_string();
        let e = |source| StateError::Sqlite {
            path: name.clone(),
            error: source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|io| {
                e(rusqlite::Error::InvalidPath(
                    format!("cannot create folder {}: {io}", dir.display()).into(),
                ))
            })?;
        }
        let conn = Connection::open(path).map_err(e)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, dump_date timestamp, status text);
             CREATE TABLE IF NOT EXISTS dipex_opus_digest (
                 kind TEXT NOT NULL, id TEXT NOT NULL, digest TEXT NOT NULL, leave INTEGER NOT NULL,
                 PRIMARY KEY (kind, id));
             CREATE TABLE IF NOT EXISTS dipex_opus_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(e)?;
        Ok(RunDb { conn, path: name })
    }

    /// Open an existing run database read-only (dry runs, status); `None` when it does not exist.
    pub fn open_existing(path: &Path) -> Result<Option<RunDb>, StateError> {
        if !path.exists() {
            return Ok(None);
        }
        let name = path.display().to_string();
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| StateError::Sqlite {
                path: name.clone(),
                error: source,
            })?;
        Ok(Some(RunDb { conn, path: name }))
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.path.clone(),
            error: source,
        }
    }

    fn has_table(&self, table: &str) -> Result<bool, StateError> {
        self.conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
            .map_err(|e| self.err(e))
    }

    /// All rows, oldest first.
    pub fn rows(&self) -> Result<Vec<RunRow>, StateError> {
        if !self.has_table("runs")? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT id, CAST(dump_date AS TEXT), status FROM runs ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(RunRow {
                    id: r.get(0)?,
                    dump_date: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    status: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The newest row when it says `Running`: the previous run did not finish.
    pub fn blocking_row(&self) -> Result<Option<RunRow>, StateError> {
        Ok(self.rows()?.pop().filter(RunRow::is_running))
    }

    /// The timestamp of the last imported dump (newest row that is not `Running`); `None` when
    /// nothing was imported yet (empty or missing history).
    pub fn last_imported(&self) -> Result<Option<DateTime>, StateError> {
        let Some(row) = self.rows()?.into_iter().rev().find(|r| !r.is_running()) else {
            return Ok(None);
        };
        parse_dump_date(&row.dump_date)
            .map(Some)
            .ok_or_else(|| StateError::BadDate {
                path: self.path.clone(),
                id: row.id,
                value: row.dump_date,
            })
    }

    /// Write the `Running diff update since …` row before a dump is processed, unless the newest
    /// row says `Running` (another import is running or one did not finish).
    pub fn begin(&self, dump: DateTime, now: DateTime) -> Result<Option<i64>, StateError> {
        // One statement, so two imports started at the same moment cannot both get in: the row
        // is only written when the newest row is not a `Running` row. `None`: blocked.
        let n = self
            .conn
            .execute(
                "INSERT INTO runs (dump_date, status) SELECT ?1, ?2 WHERE NOT EXISTS (
                     SELECT 1 FROM runs WHERE id = (SELECT MAX(id) FROM runs) AND status LIKE '%Running%')",
                params![python_datetime(dump), format!("Running diff update since {}", python_datetime(now))],
            )
            .map_err(|e| self.err(e))?;
        Ok((n == 1).then(|| self.conn.last_insert_rowid()))
    }

    /// Remove our own `Running` row after a failure that wrote nothing, so a re-run can start.
    pub fn abandon(&self, row: i64) -> Result<(), StateError> {
        self.conn
            .execute("DELETE FROM runs WHERE id = ?1", [row])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// After success, in one transaction: store the dump's digests and write `Diff update
    /// ended: …`. `stored` is what the table holds now (as read by [`RunDb::digests`]); when
    /// given, only the differences are written.
    pub fn finish(
        &mut self,
        dump: DateTime,
        now: DateTime,
        digests: &Digests,
        stored: Option<&Digests>,
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let e = |source| StateError::Sqlite {
            path: path.clone(),
            error: source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let incremental = stored;
        if incremental.is_none() {
            tx.execute("DELETE FROM dipex_opus_digest", []).map_err(e)?;
        }
        {
            let mut ins = tx
                .prepare("INSERT OR REPLACE INTO dipex_opus_digest (kind, id, digest, leave) VALUES (?1, ?2, ?3, ?4)")
                .map_err(e)?;
            let mut del = tx
                .prepare("DELETE FROM dipex_opus_digest WHERE kind = ?1 AND id = ?2")
                .map_err(e)?;
            for (id, d) in &digests.units {
                if incremental.is_none_or(|p| p.units.get(id) != Some(d)) {
                    ins.execute(params!["unit", id, d.to_hex(), 0]).map_err(e)?;
                }
            }
            for (id, (d, leave)) in &digests.employees {
                if incremental.is_none_or(|p| p.employees.get(id) != Some(&(*d, *leave))) {
                    ins.execute(params!["employee", id, d.to_hex(), *leave as i64])
                        .map_err(e)?;
                }
            }
            if let Some(p) = incremental {
                for id in p.units.keys().filter(|id| !digests.units.contains_key(*id)) {
                    del.execute(params!["unit", id]).map_err(e)?;
                }
                for id in p
                    .employees
                    .keys()
                    .filter(|id| !digests.employees.contains_key(*id))
                {
                    del.execute(params!["employee", id]).map_err(e)?;
                }
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO dipex_opus_meta (key, value) VALUES ('digest_dump_date', ?1)",
            [python_datetime(dump)],
        )
        .map_err(e)?;
        tx.execute(
            "INSERT INTO runs (dump_date, status) VALUES (?1, ?2)",
            params![
                python_datetime(dump),
                format!("Diff update ended: {}", python_datetime(now))
            ],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    /// The digests of the dump imported at `dump`, when dipex stored them.
    pub fn digests(&self, dump: DateTime) -> Result<Option<Digests>, StateError> {
        if !self.has_table("dipex_opus_meta")? {
            return Ok(None);
        }
        let stored: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM dipex_opus_meta WHERE key = 'digest_dump_date'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if stored.as_deref() != Some(python_datetime(dump).as_str()) {
            return Ok(None);
        }
        let mut out = Digests::default();
        let mut stmt = self
            .conn
            .prepare("SELECT kind, id, digest, leave FROM dipex_opus_digest")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let kind: String = r.get(0).map_err(|e| self.err(e))?;
            let id: String = r.get(1).map_err(|e| self.err(e))?;
            let hex: String = r.get(2).map_err(|e| self.err(e))?;
            let leave: i64 = r.get(3).map_err(|e| self.err(e))?;
            let Some(d) = Digest::from_hex(&hex) else {
                return Ok(None);
            };
            if kind == "unit" {
                out.units.insert(id, d);
            } else {
                out.employees.insert(id, (d, leave != 0));
            }
        }
        Ok(Some(out))
    }

    /// `dipex opus unblock`: delete the newest row when it is a `Running` row.
    pub fn unblock(&self) -> Result<&'static str, StateError> {
        match self.blocking_row()? {
            None => Ok("Status ok, no delete"),
            Some(row) => {
                self.conn
                    .execute("DELETE FROM runs WHERE id = ?1", [row.id])
                    .map_err(|e| self.err(e))?;
                Ok("Deleted last row")
            }
        }
    }

    /// The overview of `dipex opus status`, one line per row and the final status tuple.
    pub fn overview(&self) -> Result<Vec<String>, StateError> {
        let rows = self.rows()?;
        let mut out: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "id: {}, dump date: {}, status: {}",
                    r.id, r.dump_date, r.status
                )
            })
            .collect();
        let ok = rows.last().is_none_or(|r| !r.is_running());
        out.push(if ok {
            "(True, 'Status ok')".into()
        } else {
            "(False, 'Not ready to run')".into()
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn python_format_of_timestamps() {
        assert_eq!(
            python_datetime(date(2019, 11, 19).at(8, 32, 30, 575_527_000)),
            "2019-11-19 08:32:30.575527"
        );
        assert_eq!(
            python_datetime(date(2019, 9, 2).at(22, 41, 28, 0)),
            "2019-09-02 22:41:28"
        );
    }

    #[test]
    fn an_upstream_run_db_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run_db.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE runs (id INTEGER PRIMARY KEY, dump_date timestamp, status text);
                 INSERT INTO runs (dump_date, status) VALUES ('2019-09-02 22:41:28', 'Running since 2019-11-19 08:32:30.575527');
                 INSERT INTO runs (dump_date, status) VALUES ('2019-09-02 22:41:28', 'Import ended: 2019-11-19 08:55:32.455146');",
            )
            .unwrap();
        }
        let mut db = RunDb::open(&path).unwrap();
        assert_eq!(
            db.last_imported().unwrap(),
            Some(date(2019, 9, 2).at(22, 41, 28, 0))
        );
        assert_eq!(
            db.digests(date(2019, 9, 2).at(22, 41, 28, 0)).unwrap(),
            None,
            "no digests from Python"
        );
        let dump = date(2019, 9, 3).at(22, 40, 12, 0);
        let row = db
            .begin(dump, date(2019, 11, 19).at(10, 18, 35, 859_294_000))
            .unwrap()
            .unwrap();
        assert_eq!(
            db.begin(dump, date(2019, 11, 19).at(10, 18, 36, 0))
                .unwrap(),
            None,
            "blocked by the Running row"
        );
        assert!(db.blocking_row().unwrap().is_some());
        let lines = db.overview().unwrap();
        assert_eq!(
            lines[2],
            "id: 3, dump date: 2019-09-03 22:40:12, status: Running diff update since 2019-11-19 10:18:35.859294"
        );
        assert_eq!(lines[3], "(False, 'Not ready to run')");
        db.abandon(row).unwrap();
        assert_eq!(
            db.overview().unwrap().last().unwrap(),
            "(True, 'Status ok')"
        );
        let mut digests = Digests::default();
        digests.units.insert("1".into(), Digest([7; 16]));
        digests
            .employees
            .insert("999".into(), (Digest([8; 16]), true));
        db.begin(dump, date(2019, 11, 19).at(10, 18, 35, 0))
            .unwrap();
        db.finish(dump, date(2019, 11, 19).at(10, 19, 15, 0), &digests, None)
            .unwrap();
        assert_eq!(db.last_imported().unwrap(), Some(dump));
        assert_eq!(db.digests(dump).unwrap(), Some(digests));
        assert_eq!(
            db.rows().unwrap().last().unwrap().status,
            "Diff update ended: 2019-11-19 10:19:15"
        );
    }

    #[test]
    fn unblock_deletes_only_a_running_row() {
        let dir = tempfile::tempdir().unwrap();
        let db = RunDb::open(&dir.path().join("r.sqlite")).unwrap();
        assert_eq!(
            db.last_imported().unwrap(),
            None,
            "empty history: nothing imported yet"
        );
        assert_eq!(db.unblock().unwrap(), "Status ok, no delete");
        db.begin(
            date(2020, 1, 1).at(0, 0, 0, 0),
            date(2020, 1, 2).at(0, 0, 0, 0),
        )
        .unwrap();
        assert_eq!(db.unblock().unwrap(), "Deleted last row");
        assert!(db.rows().unwrap().is_empty());
    }
}
