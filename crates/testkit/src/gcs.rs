//! A Google Cloud Storage JSON API server on 127.0.0.1, with the two ways a real client gets a
//! token, following the real services' rules:
//!
//! * `POST /token` (a service-account key's `token_uri`): form `grant_type` =
//!   `urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion` = a JWT whose RS256 signature
//!   verifies with the test key's public key, with `iss` = the key's `client_email`, `aud` =
//!   this token URL, a `scope` that grants reading storage, `iat` not in the future and `exp`
//!   at most an hour after it and not past. Errors are OAuth's `{"error", "error_description"}`.
//! * `GET /computeMetadata/v1/instance/service-accounts/default/token`: only with the header
//!   `Metadata-Flavor: Google` (403 otherwise), as on a Google Cloud VM.
//! * `GET /storage/v1/b/{bucket}/o[?pageToken=..]`: a listing page of at most
//!   [`GcsServer::set_page_size`] objects (`size` as a string, `updated` in RFC 3339), with
//!   `nextPageToken` while more follow.
//! * `GET /storage/v1/b/{bucket}/o/{object}?alt=media`: the object's bytes. The object name must
//!   be percent-encoded (a raw `/` in it finds no route: 404), as GCS requires.
//!
//! Storage requests need `Authorization: Bearer <token>` with a token this server issued (401
//! otherwise). [`GcsServer::fail_next`] makes storage requests fail with a given status. A missing bucket or object is a 404, a bucket marked with [`GcsServer::forbid`] a
//! 403, both with GCS's JSON error body. Every request line is recorded
//! ([`GcsServer::requests`]), the `Authorization` header never.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use data_encoding::BASE64URL_NOPAD as B64;
use ring::signature::{self, KeyPair, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

/// The test service account's private key (PKCS#8 PEM; synthetic, grants nothing).
pub const TEST_KEY_PEM: &str = include_str!("test-service-account-key.pem");
/// The test service account's e-mail.
pub const CLIENT_EMAIL: &str = "dipex-test@dipex-test.iam.gserviceaccount.com";
const METADATA_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

#[derive(Default)]
struct State {
    buckets: HashMap<String, BTreeMap<String, Vec<u8>>>,
    forbidden: HashSet<String>,
    tokens: HashSet<String>,
    issued: usize,
    page_size: usize,
    requests: Vec<String>,
    /// Storage requests to answer with this status before serving normally.
    fail: Vec<u16>,
}

/// The running server; stops on drop.
pub struct GcsServer {
    url: String,
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    handler: Arc<GcsHandler>,
    thread: Option<JoinHandle<()>>,
}

/// The server's side of each request, on the kit's HTTP server.
struct GcsHandler {
    state: Arc<Mutex<State>>,
    public: Vec<u8>,
    token_uri: String,
    stop: AtomicBool,
}

impl crate::http::Handler for GcsHandler {
    fn handle(&self, req: &crate::http::Request) -> Option<crate::http::Response> {
        let (status, body) = handle(&self.state, &self.public, &self.token_uri, req);
        Some(crate::http::Response {
            status,
            content_type: Some("application/json"),
            headers: Vec::new(),
            body,
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl GcsServer {
    pub fn start() -> GcsServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(State {
            page_size: 1000,
            ..State::default()
        }));
        let public = {
            let der = PrivatePkcs8KeyDer::from_pem_slice(TEST_KEY_PEM.as_bytes()).unwrap();
            RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
                .unwrap()
                .public_key()
                .as_ref()
                .to_vec()
        };
        let handler = Arc::new(GcsHandler {
            state: state.clone(),
            public,
            token_uri: format!("{url}/token"),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let handler = handler.clone();
            std::thread::Builder::new()
                .name("gcs-server-accept".into())
                .spawn(move || crate::http::accept_loop(listener, handler, "gcs-server-conn"))
                .expect("spawn accept thread")
        };
        GcsServer {
            url,
            state,
            addr,
            handler,
            thread: Some(thread),
        }
    }

    /// The JSON API endpoint (`integrations.opus.gcloud_endpoint`).
    pub fn endpoint(&self) -> String {
        self.url.clone()
    }

    /// The metadata server's token URL.
    pub fn metadata_url(&self) -> String {
        format!("{}{METADATA_PATH}", self.url)
    }

    /// Write a service-account key file for this server's token endpoint into `dir`.
    pub fn key_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("service-account.json");
        let key = serde_json::json!({
            "type": "service_account",
            "project_id": "dipex-test",
            "private_key_id": "0123456789abcdef",
            "private_key": TEST_KEY_PEM,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000000",
            "token_uri": format!("{}/token", self.url),
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&key).unwrap()).unwrap();
        path
    }

    /// Create the bucket (empty) if needed.
    pub fn bucket(&self, bucket: &str) {
        self.lock().buckets.entry(bucket.into()).or_default();
    }

    /// Store an object.
    pub fn put(&self, bucket: &str, name: &str, bytes: impl Into<Vec<u8>>) {
        self.lock()
            .buckets
            .entry(bucket.into())
            .or_default()
            .insert(name.into(), bytes.into());
    }

    /// Listing and reading `bucket` answer 403 from now on.
    pub fn forbid(&self, bucket: &str) {
        self.lock().forbidden.insert(bucket.into());
    }

    /// Answer the next storage requests (listing or download, after the token check) with these
    /// statuses, one each, e.g. `[503, 503]`.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.lock().fail.extend_from_slice(statuses);
    }

    /// Objects per listing page (1,000 like GCS unless set).
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = n.max(1);
    }

    /// The request lines so far (`METHOD /path?query`).
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// How many tokens were issued.
    pub fn tokens_issued(&self) -> usize {
        self.lock().issued
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl Drop for GcsServer {
    fn drop(&mut self) {
        self.handler.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn json(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn gcs_error(code: u16, message: &str) -> (u16, Vec<u8>) {
    (
        code,
        json(
            serde_json::json!({"error": {"code": code, "message": message,
            "errors": [{"message": message, "domain": "global",
                "reason": match code { 401 => "required", 403 => "forbidden", _ => "notFound" }}]}}),
        ),
    )
}

fn oauth_error(error: &str, description: &str) -> (u16, Vec<u8>) {
    (
        400,
        json(serde_json::json!({"error": error, "error_description": description})),
    )
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn new_token(state: &Mutex<State>) -> (u16, Vec<u8>) {
    let mut st = state.lock().unwrap();
    st.issued += 1;
    let token = format!("ya29.test-token-{}-{}", st.issued, now());
    st.tokens.insert(token.clone());
    (
        200,
        json(
            serde_json::json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
        ),
    )
}

/// Check the JWT assertion; `Err` is the OAuth error description.
fn check_jwt(jwt: &str, public: &[u8], token_uri: &str) -> Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts[..] else {
        return Err("assertion is not a JWT".into());
    };
    let header: serde_json::Value = serde_json::from_slice(
        &B64.decode(h.as_bytes())
            .map_err(|_| "bad JWT header encoding")?,
    )
    .map_err(|_| "bad JWT header")?;
    if header["alg"] != "RS256" {
        return Err("JWT alg must be RS256".into());
    }
    let sig = B64
        .decode(s.as_bytes())
        .map_err(|_| "bad JWT signature encoding")?;
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "Invalid JWT Signature.".to_string())?;
    let claims: serde_json::Value = serde_json::from_slice(
        &B64.decode(c.as_bytes())
            .map_err(|_| "bad JWT claims encoding")?,
    )
    .map_err(|_| "bad JWT claims")?;
    if claims["iss"] != CLIENT_EMAIL {
        return Err("Invalid issuer".into());
    }
    if claims["aud"] != token_uri {
        return Err("Invalid JWT audience".into());
    }
    let scope = claims["scope"].as_str().unwrap_or("");
    if !scope.split(' ').any(|s| {
        s.starts_with("https://www.googleapis.com/auth/devstorage.")
            || s == "https://www.googleapis.com/auth/cloud-platform"
    }) {
        return Err("Invalid OAuth scope or ID token audience provided.".into());
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err("JWT needs iat and exp".into());
    };
    let now = now();
    if iat > now + 60 || exp <= now || exp - iat > 3600 {
        return Err(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
                .into(),
        );
    }
    Ok(())
}

fn handle(
    state: &Mutex<State>,
    public: &[u8],
    token_uri: &str,
    req: &crate::http::Request,
) -> (u16, Vec<u8>) {
    let method = req.method.clone();
    let url = if req.query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.query)
    };
    state
        .lock()
        .unwrap()
        .requests
        .push(format!("{method} {url}"));
    let headers = &req.headers;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let params = form(query);

    if path == "/token" {
        if method != "POST" {
            return (405, b"{}".to_vec());
        }
        let body = String::from_utf8_lossy(&req.body);
        let f = form(&body);
        if f.get("grant_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        {
            return oauth_error("unsupported_grant_type", "Invalid grant_type");
        }
        let Some(jwt) = f.get("assertion") else {
            return oauth_error("invalid_request", "Missing required parameter: assertion");
        };
        return match check_jwt(jwt, public, token_uri) {
            Ok(()) => new_token(state),
            Err(d) => oauth_error("invalid_grant", &d),
        };
    }
    if path == METADATA_PATH {
        if header("Metadata-Flavor").as_deref() != Some("Google") {
            return (403, b"Missing Metadata-Flavor:Google header.".to_vec());
        }
        return new_token(state);
    }
    let Some(rest) = path.strip_prefix("/storage/v1/b/") else {
        return gcs_error(404, "Not Found");
    };
    // Authorization first, as GCS does.
    let bearer = header("Authorization");
    let ok = bearer
        .as_deref()
        .and_then(|b| b.strip_prefix("Bearer "))
        .is_some_and(|t| state.lock().unwrap().tokens.contains(t));
    if !ok {
        return gcs_error(
            401,
            "Anonymous caller does not have storage.objects.list access to the Google Cloud Storage bucket. Permission 'storage.objects.list' denied on resource (or it may not exist).",
        );
    }
    let (bucket_enc, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(bucket) = percent_decode(bucket_enc) else {
        return gcs_error(400, "Invalid bucket name");
    };
    let mut st = state.lock().unwrap();
    if !st.fail.is_empty() {
        let status = st.fail.remove(0);
        return gcs_error(status, "Backend Error (injected)");
    }
    if st.forbidden.contains(&bucket) {
        return gcs_error(
            403,
            &format!(
                "{CLIENT_EMAIL} does not have storage.objects.list access to the Google Cloud Storage bucket. Permission 'storage.objects.list' denied on resource (or it may not exist)."
            ),
        );
    }
    let Some(objects) = st.buckets.get(&bucket) else {
        return gcs_error(404, "The specified bucket does not exist.");
    };
    if method != "GET" {
        return gcs_error(405, "Method not allowed");
    }
    if tail == "o" {
        let start = match params.get("pageToken") {
            Some(t) => match B64
                .decode(t.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                Some(after) => Some(after),
                None => return gcs_error(400, "Invalid argument: pageToken"),
            },
            None => None,
        };
        let page: Vec<(&String, &Vec<u8>)> = objects
            .iter()
            .filter(|(name, _)| start.as_ref().is_none_or(|a| *name > a))
            .take(st.page_size + 1)
            .collect();
        let more = page.len() > st.page_size;
        let page = &page[..page.len().min(st.page_size)];
        let items: Vec<serde_json::Value> = page
            .iter()
            .map(|(name, bytes)| {
                serde_json::json!({
                    "kind": "storage#object",
                    "id": format!("{bucket}/{name}/1"),
                    "name": name,
                    "bucket": bucket,
                    "size": bytes.len().to_string(),
                    "contentType": "application/xml",
                    "updated": "2024-05-06T07:08:09.123Z",
                    "timeCreated": "2024-05-06T07:08:09.123Z",
                })
            })
            .collect();
        let mut body = serde_json::json!({"kind": "storage#objects"});
        if !items.is_empty() {
            body["items"] = items.into();
        }
        if more {
            let last = page.last().unwrap().0;
            body["nextPageToken"] = B64.encode(last.as_bytes()).into();
        }
        return (200, json(body));
    }
    let Some(enc) = tail.strip_prefix("o/") else {
        return gcs_error(404, "Not Found");
    };
    if enc.contains('/') {
        // GCS routes on the raw path: an unencoded `/` is not part of the object name.
        return gcs_error(404, "Not Found");
    }
    let Some(name) = percent_decode(enc) else {
        return gcs_error(400, "Invalid object name");
    };
    let Some(bytes) = objects.get(&name) else {
        return gcs_error(404, &format!("No such object: {bucket}/{name}"));
    };
    if params.get("alt").map(String::as_str) == Some("media") {
        (200, bytes.clone())
    } else {
        (
            200,
            json(
                serde_json::json!({"kind": "storage#object", "name": name, "bucket": bucket,
                "size": bytes.len().to_string()}),
            ),
        )
    }
}
