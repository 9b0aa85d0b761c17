//! A caching wrapper around any [`AddressRegister`], in memory and in a SQLite file.
//!
//! Definitive answers — `Found` and `NotFound` alike — are remembered; errors never are, so a
//! network failure today is asked again tomorrow. The persistent part is the table
//!
//! ```sql
//! dar_cache(street TEXT, postal_code TEXT, result TEXT NULL, PRIMARY KEY(street, postal_code))
//! ```
//!
//! in the given SQLite file (usually the state database, which may hold other tables), where
//! `result` is the UUID text of a found address and NULL a definitive miss. Keys are the street
//! and postal code exactly as asked, trimmed.
//!
//! New answers are kept in memory and written in one transaction by [`CachedRegister::flush`]
//! (also attempted when the register is dropped). In read-only mode (dry runs) the file is only
//! read, never created or written; the in-memory cache still works for the run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{AddressRegister, DarError, Lookup};

/// How long to wait for another connection's lock on the state file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// An [`AddressRegister`] that asks `R` only about addresses it has no answer for yet.
pub struct CachedRegister<R: AddressRegister> {
    inner: R,
    path: PathBuf,
    read_only: bool,
    state: Mutex<State>,
}

struct State {
    /// `None` in read-only mode when the file or the table does not exist.
    conn: Option<Connection>,
    memory: HashMap<(String, String), Lookup>,
    /// Answers not yet written to the file (empty in read-only mode).
    pending: Vec<(String, String, Lookup)>,
    hits: u64,
    misses: u64,
    inner_calls: u64,
}

impl<R: AddressRegister> CachedRegister<R> {
    /// Wrap `inner`, with the persistent cache in the SQLite file at `path`.
    ///
    /// Unless `read_only`, the file and the `dar_cache` table are created when missing. With
    /// `read_only`, an existing file is opened read-only and a missing one is simply not used.
    pub fn new(inner: R, path: impl AsRef<Path>, read_only: bool) -> Result<Self, DarError> {
        let path = path.as_ref().to_path_buf();
        let cache_error = |e: rusqlite::Error| DarError::Cache {
            path: path.clone(),
            message: e.to_string(),
        };
        let conn = if read_only {
            if path.exists() {
                let conn = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(cache_error)?;
                conn.busy_timeout(BUSY_TIMEOUT).map_err(cache_error)?;
                let has_table = conn
                    .query_row(
                        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dar_cache'",
                        [],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(cache_error)?
                    .is_some();
                has_table.then_some(conn)
            } else {
                None
            }
        } else {
            let conn = Connection::open(&path).map_err(cache_error)?;
            conn.busy_timeout(BUSY_TIMEOUT).map_err(cache_error)?;
            conn.execute(
                "CREATE TABLE IF NOT EXISTS dar_cache (
                     street TEXT,
                     postal_code TEXT,
                     result TEXT NULL,
                     PRIMARY KEY (street, postal_code)
                 )",
                [],
            )
            .map_err(cache_error)?;
            Some(conn)
        };
        Ok(CachedRegister {
            inner,
            path,
            read_only,
            state: Mutex::new(State {
                conn,
                memory: HashMap::new(),
                pending: Vec::new(),
                hits: 0,
                misses: 0,
                inner_calls: 0,
            }),
        })
    }

    /// The wrapped register.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// The SQLite file of the persistent cache.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is never written.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// `(hits, misses, calls_to_inner)`: lookups answered from the cache (memory or file),
    /// lookups the cache had no answer for, and calls made to the wrapped register. Every miss
    /// makes one call, whether it then succeeds or fails.
    pub fn stats(&self) -> (u64, u64, u64) {
        let state = self.lock();
        (state.hits, state.misses, state.inner_calls)
    }

    /// How many addresses the in-memory cache holds (answers got this run, or read from the file).
    pub fn len(&self) -> usize {
        self.lock().memory.len()
    }

    /// Whether the in-memory cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write the answers got since the last flush to the file, in one transaction. Does nothing
    /// in read-only mode. On failure the answers stay buffered for a later flush.
    pub fn flush(&self) -> Result<(), DarError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        if self.read_only || state.pending.is_empty() {
            return Ok(());
        }
        let Some(conn) = state.conn.as_mut() else {
            return Ok(());
        };
        let write = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare(
                    "INSERT OR REPLACE INTO dar_cache (street, postal_code, result)
                     VALUES (?1, ?2, ?3)",
                )?;
                for (street, postal_code, lookup) in &state.pending {
                    let result = lookup.uuid().map(|id| id.hyphenated().to_string());
                    insert.execute((street, postal_code, result))?;
                }
            }
            tx.commit()
        };
        write(conn).map_err(|e| DarError::Cache {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        state.pending.clear();
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another lookup leaves the maps consistent; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer stored in the file, if any. A stored value that is not a UUID is ignored
    /// (asked again and overwritten).
    fn stored_answer(
        &self,
        conn: &Connection,
        key: &(String, String),
    ) -> Result<Option<Lookup>, DarError> {
        let row: Option<Option<String>> = conn
            .prepare_cached("SELECT result FROM dar_cache WHERE street = ?1 AND postal_code = ?2")
            .and_then(|mut stmt| {
                stmt.query_row((&key.0, &key.1), |row| row.get::<_, Option<String>>(0))
                    .optional()
            })
            .map_err(|e| DarError::Cache {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        Ok(match row {
            None => None,
            Some(None) => Some(Lookup::NotFound),
            Some(Some(text)) => uuid::Uuid::parse_str(&text).ok().map(Lookup::Found),
        })
    }
}

impl<R: AddressRegister> AddressRegister for CachedRegister<R> {
    fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError> {
        let key = (street.trim().to_string(), postal_code.trim().to_string());
        let mut state = self.lock();
        if let Some(answer) = state.memory.get(&key) {
            let answer = *answer;
            state.hits += 1;
            return Ok(answer);
        }
        let stored = match state.conn.as_ref() {
            Some(conn) => self.stored_answer(conn, &key)?,
            None => None,
        };
        if let Some(answer) = stored {
            state.hits += 1;
            state.memory.insert(key, answer);
            return Ok(answer);
        }
        state.misses += 1;
        state.inner_calls += 1;
        let answer = self.inner.lookup(&key.0, &key.1)?;
        if !self.read_only {
            state.pending.push((key.0.clone(), key.1.clone(), answer));
        }
        state.memory.insert(key, answer);
        Ok(answer)
    }
}

impl<R: AddressRegister> Drop for CachedRegister<R> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl<R: AddressRegister> std::fmt::Debug for CachedRegister<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("CachedRegister")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .field("cached", &state.memory.len())
            .field("pending", &state.pending.len())
            .finish_non_exhaustive()
    }
}
