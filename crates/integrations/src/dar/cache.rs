//! A caching wrapper around any [`AddressRegister`], in memory and in a SQLite file.
//!
//! Definitive answers — `Found` and `NotFound` alike, and of [`AddressRegister::describe`] a text
//! and `None` alike — are remembered; errors never are, so a network failure today is asked again
//! tomorrow. The persistent part is the two tables
//!
//! ```sql
//! dar_cache(street TEXT, postal_code TEXT, result TEXT NULL, PRIMARY KEY(street, postal_code))
//! dar_text(id TEXT PRIMARY KEY, text TEXT NULL)
//! ```
//!
//! in the given SQLite file (usually the state database, which may hold other tables). In
//! `dar_cache`, `result` is the UUID text of a found address and NULL a definitive miss; keys are
//! the street and postal code exactly as asked, trimmed. In `dar_text`, `id` is the hyphenated
//! lower-case UUID asked about and `text` its address text, NULL for "no such address".
//!
//! New answers are kept in memory and written, both tables in one transaction, by
//! [`CachedRegister::flush`] (also attempted when the register is dropped). In read-only mode (dry
//! runs) the file is only read, never created or written, and a table it lacks (say `dar_text` in
//! a file written before it existed) is simply not used; the in-memory cache still works for the
//! run.

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
    /// `None` in read-only mode when the file or both tables do not exist.
    conn: Option<Connection>,
    /// Whether `conn` has `dar_cache` (always, unless read-only).
    has_lookups: bool,
    /// Whether `conn` has `dar_text` (always, unless read-only).
    has_texts: bool,
    memory: HashMap<(String, String), Lookup>,
    /// `describe` answers by id.
    texts: HashMap<uuid::Uuid, Option<String>>,
    /// Answers not yet written to the file (empty in read-only mode).
    pending: Vec<(String, String, Lookup)>,
    /// `describe` answers not yet written to the file (empty in read-only mode).
    pending_texts: Vec<(uuid::Uuid, Option<String>)>,
    hits: u64,
    misses: u64,
    inner_calls: u64,
}

impl<R: AddressRegister> CachedRegister<R> {
    /// Wrap `inner`, with the persistent cache in the SQLite file at `path`.
    ///
    /// Unless `read_only`, the file and the `dar_cache` and `dar_text` tables are created when
    /// missing. With `read_only`, an existing file is opened read-only and a missing one, or a
    /// missing table, is simply not used.
    pub fn new(inner: R, path: impl AsRef<Path>, read_only: bool) -> Result<Self, DarError> {
        let path = path.as_ref().to_path_buf();
        let cache_error = |e: rusqlite::Error| DarError::Cache {
            path: path.clone(),
            message: e.to_string(),
        };
        let (conn, has_lookups, has_texts) = if read_only {
            if path.exists() {
                let conn = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(cache_error)?;
                conn.busy_timeout(BUSY_TIMEOUT).map_err(cache_error)?;
                let has_table = |name: &str| {
                    conn.query_row(
                        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                        [name],
                        |_| Ok(()),
                    )
                    .optional()
                    .map(|row| row.is_some())
                };
                let has_lookups = has_table("dar_cache").map_err(cache_error)?;
                let has_texts = has_table("dar_text").map_err(cache_error)?;
                if has_lookups || has_texts {
                    (Some(conn), has_lookups, has_texts)
                } else {
                    (None, false, false)
                }
            } else {
                (None, false, false)
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
            conn.execute(
                "CREATE TABLE IF NOT EXISTS dar_text (
                     id TEXT PRIMARY KEY,
                     text TEXT NULL
                 )",
                [],
            )
            .map_err(cache_error)?;
            (Some(conn), true, true)
        };
        Ok(CachedRegister {
            inner,
            path,
            read_only,
            state: Mutex::new(State {
                conn,
                has_lookups,
                has_texts,
                memory: HashMap::new(),
                texts: HashMap::new(),
                pending: Vec::new(),
                pending_texts: Vec::new(),
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

    /// `(hits, misses, calls_to_inner)`: questions (lookups and descriptions) answered from the
    /// cache (memory or file), questions the cache had no answer for, and calls made to the
    /// wrapped register. Every miss makes one call, whether it then succeeds or fails.
    pub fn stats(&self) -> (u64, u64, u64) {
        let state = self.lock();
        (state.hits, state.misses, state.inner_calls)
    }

    /// How many answers the in-memory cache holds, lookups and descriptions together (got this
    /// run, or read from the file).
    pub fn len(&self) -> usize {
        let state = self.lock();
        state.memory.len() + state.texts.len()
    }

    /// Whether the in-memory cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write the answers got since the last flush to the file, lookups and descriptions in one
    /// transaction. Does nothing in read-only mode. On failure the answers stay buffered for a
    /// later flush.
    pub fn flush(&self) -> Result<(), DarError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        if self.read_only || (state.pending.is_empty() && state.pending_texts.is_empty()) {
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
                let mut insert =
                    tx.prepare("INSERT OR REPLACE INTO dar_text (id, text) VALUES (?1, ?2)")?;
                for (id, text) in &state.pending_texts {
                    insert.execute((id.hyphenated().to_string(), text))?;
                }
            }
            tx.commit()
        };
        write(conn).map_err(|e| DarError::Cache {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        state.pending.clear();
        state.pending_texts.clear();
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

    /// The description stored in the file, if any: `Some(None)` is a stored "no such address".
    fn stored_text(
        &self,
        conn: &Connection,
        id: uuid::Uuid,
    ) -> Result<Option<Option<String>>, DarError> {
        conn.prepare_cached("SELECT text FROM dar_text WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([id.hyphenated().to_string()], |row| {
                    row.get::<_, Option<String>>(0)
                })
                .optional()
            })
            .map_err(|e| DarError::Cache {
                path: self.path.clone(),
                message: e.to_string(),
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
            Some(conn) if state.has_lookups => self.stored_answer(conn, &key)?,
            _ => None,
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

    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError> {
        let mut state = self.lock();
        if let Some(answer) = state.texts.get(&id) {
            let answer = answer.clone();
            state.hits += 1;
            return Ok(answer);
        }
        let stored = match state.conn.as_ref() {
            Some(conn) if state.has_texts => self.stored_text(conn, id)?,
            _ => None,
        };
        if let Some(answer) = stored {
            state.hits += 1;
            state.texts.insert(id, answer.clone());
            return Ok(answer);
        }
        state.misses += 1;
        state.inner_calls += 1;
        let answer = self.inner.describe(id)?;
        if !self.read_only {
            state.pending_texts.push((id, answer.clone()));
        }
        state.texts.insert(id, answer.clone());
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
            .field("described", &state.texts.len())
            .field(
                "pending",
                &(state.pending.len() + state.pending_texts.len()),
            )
            .finish_non_exhaustive()
    }
}
