//! The register's state database and a caching wrapper around any [`AddressRegister`].
//!
//! Definitive answers — `Found` and `NotFound` alike, and of [`AddressRegister::describe`] a text
//! and `None` alike — are remembered; errors never are, so a network failure today is asked again
//! tomorrow. The state database is a SQLite file owned by the register
//! (`integrations.dar.state_db`) with three tables:
//!
//! ```sql
//! dar_cache(street TEXT, postal_code TEXT, result TEXT NULL, PRIMARY KEY(street, postal_code))
//! dar_text(id TEXT PRIMARY KEY, text TEXT NULL)
//! dar_pending(importer TEXT, object TEXT, data TEXT, PRIMARY KEY(importer, object))
//! ```
//!
//! In `dar_cache`, `result` is the UUID text of a found address and NULL a definitive miss; keys
//! are the street and postal code exactly as asked, trimmed. In `dar_text`, `id` is the
//! hyphenated lower-case UUID asked about and `text` its address text, NULL for "no such
//! address". `dar_pending` holds, per importer (`opus`, `los`), the objects whose address lookup
//! *failed*: `object` names the object in the importer's terms and `data` is whatever the
//! importer needs to compute that object's address again on the next run (see [`Pending`]).
//! An importer changes its pending rows only after its writes to MO succeeded.
//!
//! New answers are kept in memory and written, in one transaction, by [`CachedRegister::flush`]
//! or [`CachedRegister::update_pending`] (also attempted when the register is dropped). The lock
//! is never held while the wrapped register is asked, so [`crate::dar::lookup_all`] asks over
//! all connections at once. In read-only mode (dry runs) the file is only read, never created or
//! written, and a table it lacks is simply not used; the in-memory cache still works for the run.
//!
//! Files written before the register had a database of its own kept `dar_cache` and `dar_text`
//! in the OPUS run database: [`CachedRegister::import_legacy`] copies them over once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{AddressRegister, DarError, Lookup};

/// How long to wait for another connection's lock on the state file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// One pending object of an importer: its name and the data to compute its address again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The object in the importer's terms (`unit:123`, `employment:456`, a unit uuid).
    pub object: String,
    /// What the importer needs for it next run (JSON, importer-defined).
    pub data: String,
}

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
    /// Whether `conn` has `dar_pending` (always, unless read-only).
    has_pending: bool,
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
        let (conn, has_lookups, has_texts, has_pending) = if read_only {
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
                let has_pending = has_table("dar_pending").map_err(cache_error)?;
                if has_lookups || has_texts || has_pending {
                    (Some(conn), has_lookups, has_texts, has_pending)
                } else {
                    (None, false, false, false)
                }
            } else {
                (None, false, false, false)
            }
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| DarError::Cache {
                    path: path.clone(),
                    message: format!("cannot create its folder: {e}"),
                })?;
            }
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
            conn.execute(
                "CREATE TABLE IF NOT EXISTS dar_pending (
                     importer TEXT NOT NULL,
                     object TEXT NOT NULL,
                     data TEXT NOT NULL,
                     PRIMARY KEY (importer, object)
                 )",
                [],
            )
            .map_err(cache_error)?;
            (Some(conn), true, true, true)
        };
        Ok(CachedRegister {
            inner,
            path,
            read_only,
            state: Mutex::new(State {
                conn,
                has_lookups,
                has_texts,
                has_pending,
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
        self.write(None)
    }

    /// Forget the answers got since the last flush, so that nothing of them is written (not
    /// even when the register is dropped): the importers call it when their run failed, so
    /// the register's state database advances only with a run that succeeded.
    pub fn discard(&self) {
        let mut state = self.lock();
        state.pending.clear();
        state.pending_texts.clear();
    }

    /// The pending objects of `importer` (none in a file without the table).
    pub fn pending_objects(&self, importer: &str) -> Result<Vec<Pending>, DarError> {
        let state = self.lock();
        let Some(conn) = state.conn.as_ref().filter(|_| state.has_pending) else {
            return Ok(Vec::new());
        };
        let read = || -> rusqlite::Result<Vec<Pending>> {
            let mut stmt = conn.prepare(
                "SELECT object, data FROM dar_pending WHERE importer = ?1 ORDER BY object",
            )?;
            stmt.query_map([importer], |row| {
                Ok(Pending {
                    object: row.get(0)?,
                    data: row.get(1)?,
                })
            })?
            .collect()
        };
        read().map_err(|e| DarError::Cache {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// Remove the pending objects `resolved` of `importer` and add (or replace) `added`, in one
    /// transaction with the answers not yet flushed. Call it only after the importer's writes to
    /// MO succeeded. Does nothing in read-only mode.
    pub fn write_pending(
        &self,
        importer: &str,
        resolved: &[String],
        added: &[Pending],
    ) -> Result<(), DarError> {
        self.write(Some((importer, resolved, added)))
    }

    /// Copy the cached answers of a file written before the register had its own database (the
    /// `dar_cache` and `dar_text` tables of an OPUS run database) into this one; answers this
    /// one already has win. Returns how many rows were copied. Does nothing in read-only mode or
    /// when `legacy` does not exist or has neither table.
    pub fn import_legacy(&self, legacy: &Path) -> Result<usize, DarError> {
        if self.read_only || !legacy.exists() || legacy == self.path {
            return Ok(0);
        }
        let mut state = self.lock();
        let Some(conn) = state.conn.as_mut() else {
            return Ok(0);
        };
        let copy = |conn: &mut Connection| -> rusqlite::Result<usize> {
            conn.execute(
                "ATTACH DATABASE ?1 AS legacy",
                [legacy.to_string_lossy().as_ref()],
            )?;
            let result = (|| {
                let tx = conn.transaction()?;
                let mut copied = 0;
                let has = |name: &str| {
                    tx.query_row(
                        "SELECT 1 FROM legacy.sqlite_master WHERE type = 'table' AND name = ?1",
                        [name],
                        |_| Ok(()),
                    )
                    .optional()
                    .map(|r| r.is_some())
                };
                if has("dar_cache")? {
                    copied += tx.execute(
                        "INSERT OR IGNORE INTO main.dar_cache (street, postal_code, result)
                         SELECT street, postal_code, result FROM legacy.dar_cache",
                        [],
                    )?;
                }
                if has("dar_text")? {
                    copied += tx.execute(
                        "INSERT OR IGNORE INTO main.dar_text (id, text)
                         SELECT id, text FROM legacy.dar_text",
                        [],
                    )?;
                }
                tx.commit()?;
                Ok(copied)
            })();
            conn.execute("DETACH DATABASE legacy", [])?;
            result
        };
        copy(conn).map_err(|e| DarError::Cache {
            path: self.path.clone(),
            message: format!("copying the answers of {}: {e}", legacy.display()),
        })
    }

    /// Write buffered answers and, if given, a change of pending objects, in one transaction.
    fn write(&self, pending: Option<(&str, &[String], &[Pending])>) -> Result<(), DarError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let no_answers = state.pending.is_empty() && state.pending_texts.is_empty();
        if self.read_only || (no_answers && pending.is_none()) {
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
                if let Some((importer, resolved, added)) = pending {
                    let mut delete =
                        tx.prepare("DELETE FROM dar_pending WHERE importer = ?1 AND object = ?2")?;
                    for object in resolved {
                        delete.execute((importer, object))?;
                    }
                    let mut insert = tx.prepare(
                        "INSERT OR REPLACE INTO dar_pending (importer, object, data)
                         VALUES (?1, ?2, ?3)",
                    )?;
                    for p in added {
                        insert.execute((importer, &p.object, &p.data))?;
                    }
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

impl<R: AddressRegister> CachedRegister<R> {
    /// The cached answer for `key`, from memory or the file; counts a hit or a miss.
    fn cached_lookup(&self, key: &(String, String)) -> Result<Option<Lookup>, DarError> {
        let mut state = self.lock();
        if let Some(answer) = state.memory.get(key) {
            let answer = *answer;
            state.hits += 1;
            return Ok(Some(answer));
        }
        let stored = match state.conn.as_ref() {
            Some(conn) if state.has_lookups => self.stored_answer(conn, key)?,
            _ => None,
        };
        if let Some(answer) = stored {
            state.hits += 1;
            state.memory.insert(key.clone(), answer);
            return Ok(Some(answer));
        }
        state.misses += 1;
        state.inner_calls += 1;
        Ok(None)
    }

    /// The cached text of `id`, from memory or the file; counts a hit or a miss.
    fn cached_text(&self, id: uuid::Uuid) -> Result<Option<Option<String>>, DarError> {
        let mut state = self.lock();
        if let Some(answer) = state.texts.get(&id) {
            let answer = answer.clone();
            state.hits += 1;
            return Ok(Some(answer));
        }
        let stored = match state.conn.as_ref() {
            Some(conn) if state.has_texts => self.stored_text(conn, id)?,
            _ => None,
        };
        if let Some(answer) = stored {
            state.hits += 1;
            state.texts.insert(id, answer.clone());
            return Ok(Some(answer));
        }
        state.misses += 1;
        Ok(None)
    }

    fn remember_text(&self, id: uuid::Uuid, answer: Option<String>) {
        let mut state = self.lock();
        if !self.read_only {
            state.pending_texts.push((id, answer.clone()));
        }
        state.texts.insert(id, answer);
    }
}

impl<R: AddressRegister> AddressRegister for CachedRegister<R> {
    fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError> {
        let key = (street.trim().to_string(), postal_code.trim().to_string());
        if let Some(answer) = self.cached_lookup(&key)? {
            return Ok(answer);
        }
        // Not under the lock: other threads ask other addresses meanwhile.
        let answer = self.inner.lookup(&key.0, &key.1)?;
        let mut state = self.lock();
        if !self.read_only {
            state.pending.push((key.0.clone(), key.1.clone(), answer));
        }
        state.memory.insert(key, answer);
        Ok(answer)
    }

    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError> {
        if let Some(answer) = self.cached_text(id)? {
            return Ok(answer);
        }
        self.lock().inner_calls += 1;
        let answer = self.inner.describe(id)?;
        self.remember_text(id, answer.clone());
        Ok(answer)
    }

    fn describe_many(
        &self,
        ids: &[uuid::Uuid],
    ) -> Result<HashMap<uuid::Uuid, Option<String>>, DarError> {
        let mut out = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        for &id in ids {
            if !seen.insert(id) {
                continue;
            }
            match self.cached_text(id)? {
                Some(answer) => {
                    out.insert(id, answer);
                }
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            self.lock().inner_calls += 1;
            for (id, answer) in self.inner.describe_many(&missing)? {
                self.remember_text(id, answer.clone());
                out.insert(id, answer);
            }
        }
        Ok(out)
    }

    fn probe(&self) -> Result<String, DarError> {
        self.inner.probe()
    }

    fn connections(&self) -> usize {
        self.inner.connections()
    }

    fn pending(&self, importer: &str) -> Result<Vec<Pending>, DarError> {
        self.pending_objects(importer)
    }

    fn update_pending(
        &self,
        importer: &str,
        resolved: &[String],
        added: &[Pending],
    ) -> Result<(), DarError> {
        self.write_pending(importer, resolved, added)
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
