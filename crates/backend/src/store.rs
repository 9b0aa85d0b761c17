//! The embedded bitemporal store: MO's objects in one SQLite file. Each row is one validity
//! slice of one object in one registration: `reg_from` is the registration that wrote it,
//! `reg_to` the one that replaced it (`NULL` = current). Reads see current rows; history of
//! writes stays in the file for audits. A plan is applied in one transaction: all or nothing.

use crate::{Applied, Backend, BackendError, Query, Registration, Window};
use dipex_model::plan::apply_owned;
use dipex_model::{Date, Kind, Object, Plan, Slice, Validity, Value};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use uuid::Uuid;

const SCHEMA_VERSION: &str = "2";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS registration (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    note TEXT NOT NULL,
    created INTEGER NOT NULL, updated INTEGER NOT NULL,
    terminated INTEGER NOT NULL, deleted INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS slice (
    id INTEGER PRIMARY KEY,
    uuid BLOB NOT NULL,
    kind TEXT NOT NULL,
    valid_from TEXT,
    valid_to TEXT,
    user_key TEXT NOT NULL,
    cpr TEXT,
    parent BLOB,
    person BLOB,
    org_unit BLOB,
    itsystem BLOB,
    data TEXT NOT NULL,
    reg_from INTEGER NOT NULL REFERENCES registration(id),
    reg_to INTEGER REFERENCES registration(id)
);
";

/// The indexes of `slice`. A large plan drops them and builds them again after its inserts,
/// which is several times faster than updating them row by row.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS slice_uuid ON slice(uuid) WHERE reg_to IS NULL;
CREATE INDEX IF NOT EXISTS slice_user_key ON slice(kind, user_key) WHERE reg_to IS NULL;
CREATE INDEX IF NOT EXISTS slice_cpr ON slice(cpr) WHERE reg_to IS NULL AND cpr IS NOT NULL;
CREATE INDEX IF NOT EXISTS slice_person ON slice(person) WHERE reg_to IS NULL AND person IS NOT NULL;
CREATE INDEX IF NOT EXISTS slice_org_unit ON slice(org_unit) WHERE reg_to IS NULL AND org_unit IS NOT NULL;
";

/// Plans with more operations than this are written in bulk mode (see [`INDEXES`]).
const BULK_OPS: usize = 20_000;

/// The embedded store.
pub struct Store {
    conn: Connection,
    path: String,
}

fn date_text(d: Option<Date>) -> Option<String> {
    d.map(|d| d.to_string())
}

/// A JSON array of texts, for `json_each`.
fn text_list(v: impl IntoIterator<Item = String>) -> String {
    serde_json::Value::Array(v.into_iter().map(serde_json::Value::String).collect()).to_string()
}

/// A JSON array of uuids as 32 hex digits, for `unhex(value)` over `json_each`.
fn uuid_list<'a>(v: impl IntoIterator<Item = &'a Uuid>) -> String {
    text_list(v.into_iter().map(|u| u.simple().to_string()))
}

/// Uuids are stored as 16-byte blobs: half the size of their text in the table and indexes.
fn blob(u: &Uuid) -> Vec<u8> {
    u.as_bytes().to_vec()
}

impl Store {
    /// Open (or create) the store file.
    pub fn open(path: &Path) -> Result<Store, BackendError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| BackendError::Sqlite {
                path: name.clone(),
                error: rusqlite::Error::InvalidPath(
                    format!("cannot create folder {}: {e}", dir.display()).into(),
                ),
            })?;
        }
        let conn = Connection::open(path).map_err(|source| BackendError::Sqlite {
            path: name.clone(),
            error: source,
        })?;
        Store::init(conn, name)
    }

    /// A store that lives in memory only (tests, dry runs on a copy).
    pub fn open_in_memory() -> Result<Store, BackendError> {
        let name = ":memory:".to_string();
        let conn = Connection::open_in_memory().map_err(|source| BackendError::Sqlite {
            path: name.clone(),
            error: source,
        })?;
        Store::init(conn, name)
    }

    fn init(conn: Connection, path: String) -> Result<Store, BackendError> {
        let store = Store { conn, path };
        store
            .conn
            .execute_batch("PRAGMA journal_mode=TRUNCATE; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384;")
            .and_then(|_| store.conn.execute_batch(SCHEMA))
            .and_then(|_| store.conn.execute_batch(INDEXES))
            .map_err(|e| store.err(e))?;
        let version: Option<String> = store
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| store.err(e))?;
        match version {
            None => {
                store
                    .conn
                    .execute(
                        "INSERT INTO meta(key, value) VALUES ('schema_version', ?1)",
                        [SCHEMA_VERSION],
                    )
                    .map_err(|e| store.err(e))?;
            }
            Some(v) if v == SCHEMA_VERSION => {}
            Some(v) => {
                return Err(BackendError::Schema {
                    path: store.path.clone(),
                    found: v,
                    expected: SCHEMA_VERSION.into(),
                });
            }
        }
        Ok(store)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// A value of the store's `meta` table (e.g. when `mo pull` last ran).
    pub fn meta(&self, key: &str) -> Result<Option<String>, BackendError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), BackendError> {
        self.conn
            .execute("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, value])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The uuids of every current object of a kind.
    pub fn uuids(&self, kind: Kind) -> Result<Vec<Uuid>, BackendError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT DISTINCT uuid FROM slice WHERE reg_to IS NULL AND kind = ?1 ORDER BY uuid",
            )
            .map_err(|e| self.err(e))?;
        self.uuid_rows(&mut stmt, &[Sql::Text(kind.as_str().into())])
    }

    /// The uuids (16-byte blobs in the first column) a statement returns.
    fn uuid_rows(
        &self,
        stmt: &mut rusqlite::Statement<'_>,
        params: &[Sql],
    ) -> Result<Vec<Uuid>, BackendError> {
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let b = r.map_err(|e| self.err(e))?;
            out.push(Uuid::from_slice(&b).map_err(|e| BackendError::Corrupt {
                path: self.path.clone(),
                uuid: format!("{b:02x?}"),
                reason: e.to_string(),
            })?);
        }
        Ok(out)
    }

    fn err(&self, source: rusqlite::Error) -> BackendError {
        BackendError::Sqlite {
            path: self.path.clone(),
            error: source,
        }
    }

    /// Number of current objects per kind.
    pub fn counts(&self) -> Result<BTreeMap<Kind, usize>, BackendError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT kind, COUNT(DISTINCT uuid) FROM slice WHERE reg_to IS NULL GROUP BY kind",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (k, n) = row.map_err(|e| self.err(e))?;
            if let Some(kind) = Kind::parse(&k) {
                out.insert(kind, n as usize);
            }
        }
        Ok(out)
    }

    fn decode(
        &self,
        uuid: &[u8],
        from: Option<String>,
        to: Option<String>,
        data: &str,
    ) -> Result<(Uuid, Slice), BackendError> {
        let corrupt = |reason: String| BackendError::Corrupt {
            path: self.path.clone(),
            uuid: format!("{uuid:02x?}"),
            reason,
        };
        let id = Uuid::from_slice(uuid).map_err(|e| corrupt(e.to_string()))?;
        let parse = |s: Option<String>| -> Result<Option<Date>, BackendError> {
            s.map(|s| {
                s.parse::<Date>()
                    .map_err(|e| corrupt(format!("bad date {s:?}: {e}")))
            })
            .transpose()
        };
        let validity = Validity::new(parse(from)?, parse(to)?);
        let value: Value = serde_json::from_str(data).map_err(|e| corrupt(e.to_string()))?;
        Ok((id, Slice::new(validity, value)))
    }

    /// Rows → objects, rows ordered by uuid then `valid_from`.
    fn collect(
        &self,
        stmt: &mut rusqlite::Statement<'_>,
        params: &[Sql],
    ) -> Result<Vec<Object>, BackendError> {
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(|e| self.err(e))?;
        let mut out: Vec<Object> = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let uuid: Vec<u8> = r.get(0).map_err(|e| self.err(e))?;
            let data: String = r.get(3).map_err(|e| self.err(e))?;
            let (id, slice) = self.decode(
                &uuid,
                r.get(1).map_err(|e| self.err(e))?,
                r.get(2).map_err(|e| self.err(e))?,
                &data,
            )?;
            match out.last_mut() {
                Some(o) if o.uuid == id => o.slices.push(slice),
                _ => out.push(Object {
                    uuid: id,
                    kind: slice.value.kind(),
                    slices: vec![slice],
                }),
            }
        }
        Ok(out)
    }

    /// The current slices of these objects within a window, objects sorted by uuid.
    /// Asked in chunks, so a plan touching every object never builds one huge JSON list.
    fn slices_of(&self, uuids: &[Uuid], window: &Window) -> Result<Vec<Object>, BackendError> {
        let mut sorted = uuids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut sql = String::from(
            "SELECT s.uuid, s.valid_from, s.valid_to, s.data FROM json_each(?1) AS j \
             CROSS JOIN slice AS s ON s.uuid = unhex(j.value) WHERE s.reg_to IS NULL",
        );
        let mut window_params = vec![Sql::Null];
        window_sql(window, &mut sql, &mut window_params);
        sql.push_str(" ORDER BY s.uuid, s.valid_from");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        // Chunks in uuid order, each ordered by uuid: the whole result is ordered by uuid.
        for chunk in sorted.chunks(4096) {
            window_params[0] = Sql::Text(uuid_list(chunk));
            out.extend(self.collect(&mut stmt, &window_params)?);
        }
        Ok(out)
    }
}

/// SQL condition and parameters for a window.
fn window_sql(w: &Window, sql: &mut String, params: &mut Vec<Sql>) {
    let v = w.as_validity();
    if let Some(to) = v.to {
        params.push(Sql::Text(to.to_string()));
        sql.push_str(&format!(
            " AND (s.valid_from IS NULL OR s.valid_from < ?{})",
            params.len()
        ));
    }
    if let Some(from) = v.from {
        params.push(Sql::Text(from.to_string()));
        sql.push_str(&format!(
            " AND (s.valid_to IS NULL OR s.valid_to > ?{})",
            params.len()
        ));
    }
}

impl Backend for Store {
    fn read(&self, q: &Query) -> Result<Vec<Object>, BackendError> {
        if q.is_void() {
            return Ok(Vec::new());
        }
        let uuids = |v: &Option<Vec<Uuid>>| v.as_ref().map(|v| (uuid_list(v), true));
        let texts = |v: Option<Vec<String>>| v.map(|v| (text_list(v), false));
        // The list filters (JSON array, holds uuids); the first one present drives the query
        // through its index.
        let lists: [(&str, Option<(String, bool)>); 6] = [
            ("uuid", uuids(&q.uuids)),
            ("user_key", texts(q.user_keys.clone())),
            (
                "cpr",
                texts(
                    q.cpr_numbers
                        .as_ref()
                        .map(|v| v.iter().map(|c| c.expose().to_string()).collect()),
                ),
            ),
            ("person", uuids(&q.persons)),
            ("org_unit", uuids(&q.org_units)),
            ("itsystem", uuids(&q.itsystems)),
        ];
        let mut params: Vec<Sql> = vec![Sql::Text(q.kind.as_str().into())];
        let mut from = String::from("slice AS s");
        let mut filter = String::new();
        for (col, list) in lists {
            let Some((json, is_uuid)) = list else {
                continue;
            };
            params.push(Sql::Text(json));
            let n = params.len();
            let value = if is_uuid { "unhex(j.value)" } else { "j.value" };
            if from == "slice AS s" {
                from = format!("json_each(?{n}) AS j CROSS JOIN slice AS s ON s.{col} = {value}");
            } else {
                filter.push_str(&format!(
                    " AND s.{col} IN (SELECT {value} FROM json_each(?{n}) AS j)"
                ));
            }
        }
        if let Some(parents) = &q.parents {
            let top = parents.iter().any(Option::is_none);
            params.push(Sql::Text(uuid_list(parents.iter().flatten())));
            let n = params.len();
            if top {
                filter.push_str(&format!(" AND (s.parent IS NULL OR s.parent IN (SELECT unhex(value) FROM json_each(?{n})))"));
            } else {
                filter.push_str(&format!(
                    " AND s.parent IN (SELECT unhex(value) FROM json_each(?{n}))"
                ));
            }
        }
        if from == "slice AS s" && filter.is_empty() {
            // Whole kind: one pass.
            let mut sql = String::from(
                "SELECT s.uuid, s.valid_from, s.valid_to, s.data FROM slice AS s WHERE s.reg_to IS NULL AND s.kind = ?1",
            );
            window_sql(&q.window, &mut sql, &mut params);
            sql.push_str(" ORDER BY s.uuid, s.valid_from");
            let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
            return self.collect(&mut stmt, &params);
        }
        // Objects with a slice in the window that matches the filters, then their window slices.
        // `+s.kind` keeps SQLite from preferring a (kind, …) index over the driving column's
        // own index; the user_key index starts with kind, so there it stays usable.
        let kind = if from.contains("s.user_key") || from == "slice AS s" {
            "s.kind"
        } else {
            "+s.kind"
        };
        let mut sql = format!(
            "SELECT DISTINCT s.uuid FROM {from} WHERE s.reg_to IS NULL AND {kind} = ?1{filter}"
        );
        window_sql(&q.window, &mut sql, &mut params);
        let uuids: Vec<Uuid> = {
            let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
            self.uuid_rows(&mut stmt, &params)?
        };
        self.slices_of(&uuids, &q.window)
    }

    fn apply(&mut self, plan: Plan, reg: &Registration) -> Result<Applied, BackendError> {
        let counts = plan.counts();
        if plan.is_empty() {
            return Ok(Applied::default());
        }
        let path = self.path.clone();
        let sql_err = |source| BackendError::Sqlite {
            path: path.clone(),
            error: source,
        };
        // `apply` holds `&mut self`, so nothing else can use the connection meanwhile.
        let tx = self.conn.unchecked_transaction().map_err(sql_err)?;
        tx.execute(
            "INSERT INTO registration(at, actor, note, created, updated, terminated, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                reg.at.to_string(),
                reg.actor,
                reg.note,
                counts.created as i64,
                counts.updated as i64,
                counts.terminated as i64,
                counts.deleted as i64
            ],
        )
        .map_err(sql_err)?;
        let reg_id = tx.last_insert_rowid();
        let bulk = plan.ops.len() > BULK_OPS;
        // Every object the plan touches, loaded in one query; how many operations each has left,
        // so an object is written (and dropped from memory) as soon as its last one is applied.
        let mut remaining: HashMap<Uuid, usize> = HashMap::new();
        for op in &plan.ops {
            *remaining.entry(op.uuid()).or_default() += 1;
        }
        let mut existing: HashMap<Uuid, Object> = self
            .slices_of(&remaining.keys().copied().collect::<Vec<_>>(), &Window::All)?
            .into_iter()
            .map(|o| (o.uuid, o))
            .collect();
        let stored: HashSet<Uuid> = existing.keys().copied().collect();
        // Close the current rows of every stored object the plan touches (while the uuid index
        // still exists); their new rows are inserted below.
        {
            let mut close = tx
                .prepare_cached("UPDATE slice SET reg_to = ?1 WHERE uuid = ?2 AND reg_to IS NULL")
                .map_err(sql_err)?;
            for uuid in &stored {
                close
                    .execute(params![reg_id, blob(uuid)])
                    .map_err(sql_err)?;
            }
        }
        if bulk {
            for stmt in INDEXES.split(';').filter(|s| !s.trim().is_empty()) {
                let name = stmt
                    .split_whitespace()
                    .nth(5)
                    .expect("CREATE INDEX IF NOT EXISTS <name>");
                tx.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))
                    .map_err(sql_err)?;
            }
        }
        let mut state: HashMap<Uuid, Option<Object>> = HashMap::new();
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO slice(uuid, kind, valid_from, valid_to, user_key, cpr, parent, person, org_unit, itsystem, data, reg_from) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(sql_err)?;
        for op in plan.ops {
            let uuid = op.uuid();
            let cur = state
                .remove(&uuid)
                .unwrap_or_else(|| existing.remove(&uuid));
            let next = apply_owned(cur, op).map_err(|source| BackendError::Apply {
                path: path.clone(),
                error: source,
            })?;
            let left = remaining.get_mut(&uuid).expect("counted above");
            *left -= 1;
            if *left > 0 {
                state.insert(uuid, next);
                continue;
            }
            let id = blob(&uuid);
            let Some(obj) = next else { continue };
            for s in &obj.slices {
                let refs = s.value.refs();
                let data = serde_json::to_string(&s.value).expect("values serialise");
                insert
                    .execute(params![
                        id,
                        obj.kind.as_str(),
                        date_text(s.validity.from),
                        date_text(s.validity.to),
                        s.value.user_key(),
                        s.value.cpr().map(|c| c.expose().to_string()),
                        refs.parent.as_ref().map(blob),
                        refs.person.as_ref().map(blob),
                        refs.org_unit.as_ref().map(blob),
                        refs.itsystem.as_ref().map(blob),
                        data,
                        reg_id
                    ])
                    .map_err(sql_err)?;
            }
        }
        drop(insert);
        if bulk {
            tx.execute_batch(INDEXES).map_err(sql_err)?;
        }
        tx.commit().map_err(sql_err)?;
        Ok(Applied {
            counts,
            refused: Vec::new(),
        })
    }

    fn describe(&self) -> String {
        format!("embedded store {}", self.path)
    }
}
