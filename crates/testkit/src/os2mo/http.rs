//! The OS2mo server's HTTP side, on the small HTTP/1.1 server of `dipex_testkit::http`: the routes
//! of MO and its Keycloak token endpoint, authentication, failure injection and stats.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::http::{Request, Response};

use serde_json::{Value, json};

use crate::os2mo::exec::Engine;
use crate::os2mo::schema::{Schema, check_request};
use crate::os2mo::{Failure, Stats};

/// State shared by all connection threads.
pub(crate) struct Shared {
    pub engine: Mutex<Engine>,
    pub stats: Mutex<Stats>,
    pub tokens: Mutex<HashMap<String, Instant>>,
    /// (requests to let through first, requests to fail, how)
    pub failures: Mutex<(usize, usize, Option<Failure>)>,
    /// The same, for mutation requests only.
    pub write_failures: Mutex<(usize, usize, Option<Failure>)>,
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime: Duration,
    pub legacy_session: Option<uuid::Uuid>,
    pub schema: Option<Schema>,
    pub stop: AtomicBool,
}

impl crate::http::Handler for Shared {
    fn handle(&self, req: &Request) -> Option<Response> {
        handle(self, req)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

const TOKEN_PATH: &str = "/auth/realms/mo/protocol/openid-connect/token";

/// Route one request; `None` = drop the connection.
fn handle(shared: &Shared, req: &Request) -> Option<Response> {
    shared.stats.lock().expect("stats").http_requests += 1;
    let not_found = || Response::json(404, &json!({"detail": "Not Found"}));
    let resp = match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/graphql/v30") => return graphql(shared, req),
        ("POST", "/graphql/v30/") => Response::empty(307).with_header("location", "/graphql/v30"),
        ("GET", "/graphql/v30/schema.graphql") => match &shared.schema {
            Some(s) => Response::text(200, s.text()),
            None => not_found(),
        },
        ("GET", "/graphql/v30") => {
            Response::text(405, "GraphiQL is not served by the dipex OS2mo test server")
        }
        ("GET", "/health/live") | ("GET", "/health/ready") => Response::empty(204),
        ("POST", TOKEN_PATH) => token(shared, req),
        (_, TOKEN_PATH) => Response::json(405, &json!({"error": "HTTP 405 Method Not Allowed"})),
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

fn token(shared: &Shared, req: &Request) -> Response {
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
        .and_then(|b| crate::os2mo::b64::decode(b.trim()).ok())
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
        return Response::json(
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
        return Response::json(
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
    Response::json(
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

fn authenticated(shared: &Shared, req: &Request) -> bool {
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

fn graphql(shared: &Shared, req: &Request) -> Option<Response> {
    shared.stats.lock().expect("stats").graphql_requests += 1;
    let take = |f: &mut (usize, usize, Option<Failure>)| {
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
    let mut injected = take(&mut shared.failures.lock().expect("failures"));
    // A mutation request: its document starts with `mutation`.
    let is_write = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .is_some_and(|b| {
            b.get("query")
                .and_then(Value::as_str)
                .is_some_and(|q| q.trim_start().starts_with("mutation"))
        });
    if is_write && injected.is_none() {
        injected = take(&mut shared.write_failures.lock().expect("failures"));
    }
    let fail = |resp: Option<Response>| {
        shared.stats.lock().expect("stats").failed_requests += 1;
        resp
    };
    match injected {
        Some(Failure::Drop) => return fail(None),
        Some(Failure::LoseAnswer) => {}
        Some(Failure::Status(code)) => {
            return fail(Some(Response::text(
                code,
                &format!(
                    "{} {} (injected by the test server)",
                    code,
                    crate::http::reason(code)
                ),
            )));
        }
        None => {}
    }
    if !authenticated(shared, req) {
        return fail(Some(Response::json(
            200,
            &json!({"data": null, "errors": [{"message": "User is not authenticated"}]}),
        )));
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return fail(Some(Response::json(
                400,
                &json!({"detail": format!("Unable to parse request body as JSON: {e}")}),
            )));
        }
    };
    let Some(query) = body.get("query").and_then(Value::as_str) else {
        return fail(Some(Response::json(
            400,
            &json!({"detail": "No GraphQL query found in the request"}),
        )));
    };
    let variables = body.get("variables").cloned().unwrap_or(Value::Null);
    let op_name = body.get("operationName").and_then(Value::as_str);
    if let Some(schema) = &shared.schema
        && let Err(errors) = check_request(schema, query, &variables, op_name)
    {
        return fail(Some(Response::json(
            200,
            &crate::os2mo::gql::error_response(&errors),
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
    if injected == Some(Failure::LoseAnswer) {
        return fail(None);
    }
    Some(Response::json(200, &outcome.response))
}
