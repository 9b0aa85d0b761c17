//! An OS2sync 4.x REST API server on loopback, for the tests of dipex's OS2Sync exporter.
//!
//! It speaks the routes the exporter uses (`/api/orgUnit`, `/api/user`, `/api/hierarchy`,
//! `/manage/health`) with OS2sync's status codes and texts, and keeps a small "FK ORG" state:
//! posting replaces an object, deleting soft-deletes it, reading gives 404 for unknown or deleted
//! objects, and the hierarchy is built in the "background" (polled with 404 until ready, one-shot).
//! It is strict where a client mistake would fail against the real service (missing `CVR`, wrong
//! `ApiKey`, missing required fields, wrong content type) and lenient where OS2sync is lenient
//! (member names are matched case-insensitively, unknown members are ignored). Every request is
//! recorded as sent, so tests can assert exact routes, headers and PascalCase member names.

mod api;
mod http;
mod model;
mod time;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

/// How to start an [`Os2SyncServer`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The server's own configured CVR (`Cvr` in OS2sync's settings). When set it overrides the
    /// `CVR` header, which may then be absent; when `None` every `/api` call needs the header.
    pub cvr: Option<String>,
    /// When set, every call except `GET /api/hierarchy/{id}` needs header `ApiKey` equal to it.
    pub api_key: Option<String>,
    /// `GET /api/hierarchy/{id}` answers 404 this many times before the result is ready.
    pub hierarchy_delay: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            cvr: None,
            api_key: None,
            hierarchy_delay: 2,
        }
    }
}

/// One request as the server received it, with the status it answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// `GET`, `POST`, `DELETE`, … as sent.
    pub method: String,
    /// The path as sent (without the query), e.g. `/api/orgUnit/`.
    pub path: String,
    /// The raw query string without `?` (empty when there was none).
    pub query: String,
    /// Headers in the order sent, names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, `None` when empty or not JSON.
    pub body: Option<Value>,
    /// The body bytes as sent.
    pub raw_body: Vec<u8>,
    /// The HTTP status answered.
    pub status: u16,
}

impl Recorded {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter with this name (case-insensitive, as ASP.NET binds), undecoded.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// A running OS2sync server on `127.0.0.1`; dropping it stops it.
pub struct Os2SyncServer {
    addr: SocketAddr,
    shared: Arc<http::Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Os2SyncServer {
    /// Start a server on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If the loopback port cannot be bound.
    pub fn start(opts: Options) -> Os2SyncServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(http::Shared {
            state: Mutex::new(api::State::default()),
            opts,
            stop: Default::default(),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("os2sync-server-accept".into())
            .spawn(move || crate::http::accept_loop(listener, s, "os2sync-server-conn"))
            .expect("spawn accept thread");
        Os2SyncServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT/api`, the value for the exporter's `os2sync.api_url`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url())
    }

    /// `http://127.0.0.1:PORT` (health at `{base}/manage/health`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, api::State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request received so far, in order (including rejected ones).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// The org units FK ORG holds now (not deleted), each as `GET /api/orgUnit/{uuid}` gives it.
    pub fn org_units(&self) -> BTreeMap<Uuid, Value> {
        let st = self.state();
        st.ous
            .iter()
            .map(|(k, v)| (*k, model::ou_output(v)))
            .collect()
    }

    /// The users FK ORG holds now (not deleted), each as `GET /api/user/{uuid}` gives it.
    pub fn users(&self) -> BTreeMap<Uuid, Value> {
        let st = self.state();
        st.users
            .iter()
            .map(|(k, v)| (*k, model::user_output(v)))
            .collect()
    }

    /// Uuids of org units deleted through the API (and not posted again since).
    pub fn deleted_org_units(&self) -> BTreeSet<Uuid> {
        self.state().deleted_ous.clone()
    }

    /// Uuids of users deleted through the API (and not posted again since).
    pub fn deleted_users(&self) -> BTreeSet<Uuid> {
        self.state().deleted_users.clone()
    }

    /// Put an org unit into "FK ORG" directly, as another system would have created it. The JSON
    /// is an `OrgUnitRegistration` (members case-insensitive; `Type` and `Timestamp` kept).
    ///
    /// # Panics
    /// If it is not a valid registration (the same rules as `POST /api/orgUnit`).
    pub fn seed_org_unit(&self, json: Value) {
        let ou = model::parse_ou(&json).unwrap_or_else(|e| panic!("seed_org_unit: {e}"));
        let mut st = self.state();
        st.deleted_ous.remove(&ou.uuid);
        st.ous.insert(ou.uuid, ou);
    }

    /// Put a user into "FK ORG" directly (a `UserRegistration`, members case-insensitive).
    ///
    /// # Panics
    /// If it is not a valid registration (the same rules as `POST /api/user`).
    pub fn seed_user(&self, json: Value) {
        let user = model::parse_user(&json).unwrap_or_else(|e| panic!("seed_user: {e}"));
        let mut st = self.state();
        st.deleted_users.remove(&user.uuid);
        st.users.insert(user.uuid, user);
    }

    /// The next `n` POST/DELETE requests are answered with `status` and a short text body,
    /// before any other check, and change nothing.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state().fail = (n, status);
    }
}

impl Drop for Os2SyncServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}
