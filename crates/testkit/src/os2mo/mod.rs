//! An OS2mo-protocol server (GraphQL API v30) on loopback, for dipex's tests and benchmarks.
//!
//! It is an independent implementation of MO's observed semantics (see `os2mo-observed.md`):
//! Keycloak-style client-credential tokens or a legacy session header, HTTP 200 answers in MO's
//! shapes, collections with MO's filters, windows and paging, bitemporal-ish objects (attribute and
//! active timelines), atomic multi-mutation requests, the no-op trap, and MO's error shapes. When
//! an SDL schema is configured, every request is validated against it first, like a real server.

mod b64;
mod dates;
mod exec;
mod gql;
mod http;
mod model;
mod mutate;
pub mod peer;
mod schema;
mod store;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use schema::{Schema, load_schema, validate_request};

/// How to start a [`MoServer`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Accepted client id at the token endpoint (default `dipex`).
    pub client_id: String,
    /// Accepted client secret (default `test-secret`).
    pub client_secret: String,
    /// Lifetime of issued tokens (default 300 s, Keycloak's default).
    pub token_lifetime: Duration,
    /// If set, the header `session: <uuid>` authenticates too (MO's legacy sessions).
    pub legacy_session: Option<uuid::Uuid>,
    /// The root organisation: uuid, user_key, name.
    pub org: (uuid::Uuid, String, String),
    /// SDL to validate requests against (default: env `DIPEX_OS2MO_SCHEMA` if set).
    pub schema: Option<PathBuf>,
    /// If set, pages hold at most this many objects even if `limit` is larger.
    pub max_page: Option<usize>,
    /// "Today" for default windows (default: the real date in Copenhagen).
    pub today: Option<jiff::civil::Date>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            client_id: "dipex".into(),
            client_secret: "test-secret".into(),
            token_lifetime: Duration::from_secs(300),
            legacy_session: None,
            org: (uuid::Uuid::new_v4(), "root".into(), "root".into()),
            schema: std::env::var_os("DIPEX_OS2MO_SCHEMA")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            max_page: None,
            today: None,
        }
    }
}

/// Counters since the server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every HTTP request received.
    pub http_requests: usize,
    /// `POST /graphql/v30` requests (including injected failures and unauthenticated ones).
    pub graphql_requests: usize,
    /// Requests to the token endpoint.
    pub token_requests: usize,
    /// Mutation fields executed (attempted), over all requests.
    pub mutations: usize,
    /// GraphQL requests answered with errors, an auth failure or an injected failure.
    pub failed_requests: usize,
    /// Requests that reported success but were silently rolled back (a trailing no-op update).
    pub rolled_back: usize,
}

/// A failure to inject into the next GraphQL requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Answer with this HTTP status (e.g. 502, 503) and a short text body.
    Status(u16),
    /// Close the connection without answering.
    Drop,
    /// Execute the request, then close the connection without answering (a lost answer: the
    /// client cannot know whether its writes were applied).
    LoseAnswer,
}

/// A running server on `127.0.0.1`; dropping it stops it.
pub struct MoServer {
    addr: SocketAddr,
    shared: Arc<http::Shared>,
    accept: Option<JoinHandle<()>>,
}

impl MoServer {
    /// Start a server on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If the loopback port cannot be bound or the configured schema cannot be loaded.
    pub fn start(opts: Options) -> MoServer {
        let schema = opts
            .schema
            .as_ref()
            .map(|p| load_schema(p).unwrap_or_else(|e| panic!("{e}")));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(http::Shared {
            engine: Mutex::new(exec::Engine {
                store: store::Store::default(),
                org: opts.org.clone(),
                max_page: opts.max_page,
                today: opts.today,
            }),
            stats: Mutex::new(Stats::default()),
            tokens: Mutex::new(Default::default()),
            failures: Mutex::new((0, 0, None)),
            write_failures: Mutex::new((0, 0, None)),
            client_id: opts.client_id,
            client_secret: opts.client_secret,
            token_lifetime: opts.token_lifetime,
            legacy_session: opts.legacy_session,
            schema,
            stop: Default::default(),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("mo-server-accept".into())
            .spawn(move || crate::http::accept_loop(listener, s, "os2mo-server-conn"))
            .expect("spawn accept thread");
        MoServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` (GraphQL at `{base}/graphql/v30`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `{base}/auth` (token endpoint at `{auth}/realms/mo/protocol/openid-connect/token`).
    pub fn auth_server(&self) -> String {
        format!("{}/auth", self.base_url())
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        *self.shared.stats.lock().expect("stats")
    }

    /// The next `n` GraphQL HTTP requests get `how` instead of being executed.
    pub fn fail_next(&self, n: usize, how: Failure) {
        self.fail_after(0, n, how);
    }

    /// Let the next `skip` GraphQL requests through, then give the `n` after them `how`.
    pub fn fail_after(&self, skip: usize, n: usize, how: Failure) {
        *self.shared.failures.lock().expect("failures") = (skip, n, Some(how));
    }

    /// Like [`MoServer::fail_after`], counting only mutation requests (writes): let `skip` of
    /// them through, then give the `n` after them `how`. Reads are not affected.
    pub fn fail_writes_after(&self, skip: usize, n: usize, how: Failure) {
        *self.shared.write_failures.lock().expect("failures") = (skip, n, Some(how));
    }

    /// The whole store as JSON: per collection, per uuid, the attribute slices, active intervals
    /// and visible slices.
    pub fn snapshot(&self) -> serde_json::Value {
        self.shared.engine.lock().expect("engine").store.snapshot()
    }
}

impl Drop for MoServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}
