//! A small HTTP/1.1 server on std::net (a thread per connection, keep-alive, chunked bodies):
//! the routes of MO and its Keycloak token endpoint, authentication, failure injection and stats.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::exec::Engine;
use crate::schema::{Schema, check_request};
use crate::{Failure, Stats};

/// State shared by all connection threads.
pub(crate) struct Shared {
    pub engine: Mutex<Engine>,
    pub stats: Mutex<Stats>,
    pub tokens: Mutex<HashMap<String, Instant>>,
    /// (requests to let through first, requests to fail, how)
    pub failures: Mutex<(usize, usize, Option<Failure>)>,
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime: Duration,
    pub legacy_session: Option<uuid::Uuid>,
    pub schema: Option<Schema>,
    pub stop: AtomicBool,
}

struct HttpRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct HttpResponse {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn json_response(status: u16, v: &Value) -> HttpResponse {
    HttpResponse {
        status,
        content_type: "application/json",
        headers: Vec::new(),
        body: serde_json::to_vec(v).expect("json"),
    }
}

fn text_response(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        content_type: "text/plain; charset=utf-8",
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Accept connections until `stop` is set; each connection gets its own thread.
pub(crate) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = shared.clone();
        std::thread::spawn(move || {
            let _ = serve_connection(stream, &shared);
        });
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        // Wait for the next request, checking the stop flag now and then.
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))?;
        loop {
            if shared.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            match reader.fill_buf() {
                Ok([]) => return Ok(()),
                Ok(_) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(30)))?;
        let req = read_request(&mut reader)?;
        let close = req.close;
        match handle(shared, &req) {
            Some(resp) => {
                write_response(&mut writer, &resp, close)?;
                if close {
                    return Ok(());
                }
            }
            None => {
                // Injected transport failure: close without answering.
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut buf = Vec::new();
    reader
        .by_ref()
        .take(64 * 1024)
        .read_until(b'\n', &mut buf)?;
    if buf.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "header is not UTF-8"))
}

fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<HttpRequest> {
    let line = read_line(reader)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let version = parts.next().unwrap_or("HTTP/1.1").to_string();
    let mut headers = Vec::new();
    loop {
        let h = read_line(reader)?;
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        loop {
            let size_line = read_line(reader)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("0").trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                while !read_line(reader)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            read_line(reader).or_else(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    Ok(String::new())
                } else {
                    Err(e)
                }
            })?;
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    }
    let conn = get("connection").unwrap_or_default().to_ascii_lowercase();
    let close = conn.contains("close") || (version == "HTTP/1.0" && !conn.contains("keep-alive"));
    let path = target.split('?').next().unwrap_or_default().to_string();
    Ok(HttpRequest {
        method,
        path,
        headers,
        body,
        close,
    })
}

fn write_response(w: &mut TcpStream, r: &HttpResponse, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    if r.status != 204 {
        head.push_str(&format!(
            "content-type: {}\r\ncontent-length: {}\r\n",
            r.content_type,
            r.body.len()
        ));
    }
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(if close {
        "connection: close\r\n\r\n"
    } else {
        "connection: keep-alive\r\n\r\n"
    });
    w.write_all(head.as_bytes())?;
    if r.status != 204 {
        w.write_all(&r.body)?;
    }
    w.flush()
}

const TOKEN_PATH: &str = "/auth/realms/mo/protocol/openid-connect/token";

/// Route one request; `None` = drop the connection.
fn handle(shared: &Shared, req: &HttpRequest) -> Option<HttpResponse> {
    shared.stats.lock().expect("stats").http_requests += 1;
    let not_found = || json_response(404, &json!({"detail": "Not Found"}));
    let resp = match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/graphql/v30") => return graphql(shared, req),
        ("POST", "/graphql/v30/") => {
            let mut r = json_response(307, &json!(null));
            r.body.clear();
            r.headers.push(("location", "/graphql/v30".into()));
            r
        }
        ("GET", "/graphql/v30/schema.graphql") => match &shared.schema {
            Some(s) => text_response(200, s.text()),
            None => not_found(),
        },
        ("GET", "/graphql/v30") => {
            text_response(405, "GraphiQL is not served by the dipex OS2mo test server")
        }
        ("GET", "/health/live") | ("GET", "/health/ready") => HttpResponse {
            status: 204,
            content_type: "text/plain",
            headers: Vec::new(),
            body: Vec::new(),
        },
        ("POST", TOKEN_PATH) => token(shared, req),
        (_, TOKEN_PATH) => json_response(405, &json!({"error": "HTTP 405 Method Not Allowed"})),
        _ => not_found(),
    };
    Some(resp)
}

fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn token(shared: &Shared, req: &HttpRequest) -> HttpResponse {
    shared.stats.lock().expect("stats").token_requests += 1;
    let body = String::from_utf8_lossy(&req.body);
    let form: HashMap<String, String> = body
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect();
    // Client credentials may also come as HTTP Basic.
    let basic = req
        .header("authorization")
        .and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        })
        .and_then(|b| crate::b64::decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| {
            t.split_once(':')
                .map(|(a, b)| (form_decode(a), form_decode(b)))
        });
    let grant = form
        .get("grant_type")
        .map(String::as_str)
        .unwrap_or_default();
    if grant != "client_credentials" {
        return json_response(
            400,
            &json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}),
        );
    }
    let (id, secret) = match (&basic, form.get("client_id"), form.get("client_secret")) {
        (Some((a, b)), _, _) => (a.clone(), b.clone()),
        (None, Some(a), Some(b)) => (a.clone(), b.clone()),
        (None, Some(a), None) => (a.clone(), String::new()),
        _ => (String::new(), String::new()),
    };
    if id != shared.client_id || secret != shared.client_secret {
        return json_response(
            401,
            &json!({"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}),
        );
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = Instant::now();
    {
        let mut tokens = shared.tokens.lock().expect("tokens");
        tokens.retain(|_, exp| *exp > now);
        tokens.insert(token.clone(), now + shared.token_lifetime);
    }
    json_response(
        200,
        &json!({
            "access_token": token,
            "expires_in": shared.token_lifetime.as_secs(),
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }),
    )
}

fn authenticated(shared: &Shared, req: &HttpRequest) -> bool {
    if let Some(s) = shared.legacy_session
        && let Some(h) = req.header("session")
        && uuid::Uuid::parse_str(h.trim()).is_ok_and(|u| u == s)
    {
        return true;
    }
    let Some(auth) = req.header("authorization") else {
        return false;
    };
    let Some((scheme, tok)) = auth.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    shared
        .tokens
        .lock()
        .expect("tokens")
        .get(tok.trim())
        .is_some_and(|exp| *exp > Instant::now())
}

fn graphql(shared: &Shared, req: &HttpRequest) -> Option<HttpResponse> {
    shared.stats.lock().expect("stats").graphql_requests += 1;
    let injected = {
        let mut f = shared.failures.lock().expect("failures");
        if f.0 > 0 {
            f.0 -= 1;
            None
        } else if f.1 > 0 {
            f.1 -= 1;
            f.2
        } else {
            None
        }
    };
    let fail = |resp: Option<HttpResponse>| {
        shared.stats.lock().expect("stats").failed_requests += 1;
        resp
    };
    match injected {
        Some(Failure::Drop) => return fail(None),
        Some(Failure::Status(code)) => {
            return fail(Some(text_response(
                code,
                &format!("{} {} (injected by the test server)", code, reason(code)),
            )));
        }
        None => {}
    }
    if !authenticated(shared, req) {
        return fail(Some(json_response(
            200,
            &json!({"data": null, "errors": [{"message": "User is not authenticated"}]}),
        )));
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return fail(Some(json_response(
                400,
                &json!({"detail": format!("Unable to parse request body as JSON: {e}")}),
            )));
        }
    };
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        return fail(Some(json_response(
            400,
            &json!({"detail": "No GraphQL query found in the request"}),
        )));
    };
    let variables = body.get("variables").cloned().unwrap_or(Value::Null);
    let op_name = body.get("operationName").and_then(Value::as_str);
    if let Some(schema) = &shared.schema
        && let Err(errors) = check_request(schema, query, &variables, op_name)
    {
        return fail(Some(json_response(
            200,
            &crate::gql::error_response(&errors),
        )));
    }
    let outcome = shared
        .engine
        .lock()
        .expect("engine")
        .execute(query, &variables, op_name);
    {
        let mut st = shared.stats.lock().expect("stats");
        st.mutations += outcome.mutations;
        if outcome.failed {
            st.failed_requests += 1;
        }
        if outcome.silently_rolled_back {
            st.rolled_back += 1;
        }
    }
    Some(json_response(200, &outcome.response))
}
