//! The HTTP side of the OS2mo client: one GraphQL POST with authentication (a Keycloak
//! client-credentials token, cached and renewed before it expires, or a fixed `session` header
//! for development servers), timeouts, and retries with back-off for transport errors and 5xx
//! answers only. Secrets never leave this file except in the request that needs them.

use super::error::{GqlError, GqlErrors, Os2moError, redact};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How dipex proves who it is to OS2mo.
#[derive(Clone)]
pub enum Auth {
    /// No credentials (a server that needs none; every real OS2mo does).
    None,
    /// A fixed header `session: <uuid>` (a development server's `OS2MO_LEGACY_SESSIONS`).
    Session(String),
    /// OAuth2 client credentials from Keycloak: `{auth_server}/realms/{realm}/protocol/openid-connect/token`.
    ClientCredentials {
        auth_server: String,
        realm: String,
        client_id: String,
        client_secret: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("none"),
            Auth::Session(_) => f.write_str("session header (hidden)"),
            Auth::ClientCredentials {
                auth_server,
                realm,
                client_id,
                ..
            } => {
                write!(
                    f,
                    "client {client_id} at {auth_server} realm {realm} (secret hidden)"
                )
            }
        }
    }
}

/// Everything the client needs to know; built by the CLI from settings and environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `mora.base`, e.g. `https://os2mo.kommune.dk`.
    pub base: String,
    /// The GraphQL version path (`/graphql/v{version}`).
    pub version: u32,
    pub auth: Auth,
    /// Extra trusted CA certificates (PEM); TLS is always verified.
    pub ca_file: Option<PathBuf>,
    /// Per request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// Retries after a transport error or a 5xx answer.
    pub retries: u32,
    /// The first back-off; it doubles with each retry.
    pub backoff: Duration,
    /// Mutations per request.
    pub batch_size: usize,
    /// Objects per page when reading.
    pub page_size: usize,
    /// Requests in flight at once when reading.
    pub concurrency: usize,
    /// Write requests in flight at once (independent writes of one dependency layer).
    pub write_concurrency: usize,
}

impl Config {
    pub fn new(base: &str, auth: Auth) -> Config {
        Config {
            base: base.trim_end_matches('/').to_string(),
            version: 30,
            auth,
            ca_file: None,
            timeout: Duration::from_secs(300),
            retries: 3,
            backoff: Duration::from_millis(500),
            batch_size: 100,
            page_size: 500,
            concurrency: 4,
            write_concurrency: 4,
        }
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql/v{}", self.base, self.version)
    }
}

struct Token {
    value: String,
    renew_at: Instant,
}

/// The GraphQL transport. Shared by reading threads (`&self`).
pub struct Transport {
    agent: ureq::Agent,
    url: String,
    cfg: Config,
    token: Mutex<Option<Token>>,
    requests: AtomicUsize,
}

impl Transport {
    pub fn new(cfg: Config) -> Result<Transport, Os2moError> {
        let mut builder = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("dipex/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Os2moError::Config(format!("CA file {}: {e}", path.display())))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(Os2moError::Config(format!(
                            "CA file {}: {e}",
                            path.display()
                        )));
                    }
                }
            }
            if certs.is_empty() {
                return Err(Os2moError::Config(format!(
                    "CA file {}: no certificates in it",
                    path.display()
                )));
            }
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
            builder = builder.tls_config(tls);
        }
        Ok(Transport {
            agent: ureq::Agent::new_with_config(builder.build()),
            url: cfg.graphql_url(),
            cfg,
            token: Mutex::new(None),
            requests: AtomicUsize::new(0),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// GraphQL requests sent so far (retries included).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Send one document; `Ok` is the answer's `data`. An answer with any `errors` entry is an
    /// `Err(GraphQl)`: MO rolls the whole request back then.
    pub fn graphql(&self, what: &str, query: &str, variables: Value) -> Result<Value, Os2moError> {
        self.request(what, query, variables, true)
    }

    /// Send a write once: after a transport error or a 5xx answer the request may or may not
    /// have been applied, so it is never re-sent as it is (the caller reads back and plans again).
    pub fn graphql_write(
        &self,
        what: &str,
        query: &str,
        variables: Value,
    ) -> Result<Value, Os2moError> {
        self.request(what, query, variables, false)
    }

    fn request(
        &self,
        what: &str,
        query: &str,
        variables: Value,
        retry: bool,
    ) -> Result<Value, Os2moError> {
        let body = json!({"query": query, "variables": variables});
        let mut renewed = false;
        loop {
            let answer = if retry {
                self.post_with_retries(&body)?
            } else {
                self.post_once(&body)?
            };
            let errors: Vec<GqlError> = answer
                .get("errors")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(GqlError::from_json).collect())
                .unwrap_or_default();
            if errors.is_empty() {
                return match answer.get("data") {
                    Some(d) if !d.is_null() => Ok(d.clone()),
                    _ => Err(Os2moError::Decode {
                        what: what.into(),
                        reason: "no data and no errors".into(),
                    }),
                };
            }
            // An expired or revoked token: fetch a new one once.
            if !renewed && errors.iter().any(GqlError::is_unauthenticated) {
                if let Auth::ClientCredentials { .. } = self.cfg.auth {
                    *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    renewed = true;
                    continue;
                }
                return Err(Os2moError::Auth {
                    url: self.url.clone(),
                    message: "User is not authenticated (check the session or client credentials)"
                        .into(),
                });
            }
            if errors.iter().any(GqlError::is_unauthenticated) {
                return Err(Os2moError::Auth {
                    url: self.url.clone(),
                    message: "User is not authenticated, even with a fresh token (does the client have MO's roles?)".into(),
                });
            }
            return Err(Os2moError::GraphQl {
                what: what.into(),
                errors: GqlErrors(errors),
            });
        }
    }

    fn post_with_retries(&self, body: &Value) -> Result<Value, Os2moError> {
        let mut attempt = 0;
        loop {
            match self.post_once(body) {
                Err(
                    e @ (Os2moError::Transport { .. }
                    | Os2moError::Http {
                        status: 500..=599, ..
                    }),
                ) if attempt < self.cfg.retries => {
                    let wait = self.cfg.backoff * 2u32.saturating_pow(attempt);
                    tracing::warn!("{e}; retrying in {} ms", wait.as_millis());
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn post_once(&self, body: &Value) -> Result<Value, Os2moError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json");
        match &self.cfg.auth {
            Auth::None => {}
            Auth::Session(s) => req = req.header("session", s),
            Auth::ClientCredentials { .. } => {
                req = req.header("authorization", &format!("Bearer {}", self.token()?))
            }
        }
        let text = serde_json::to_string(body).map_err(|e| Os2moError::Decode {
            what: "request".into(),
            reason: e.to_string(),
        })?;
        let resp = req.send(text).map_err(|e| self.transport(&e))?;
        let status = resp.status().as_u16();
        let mut resp = resp;
        let text = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| self.transport(&e))?;
        if status != 200 {
            return Err(Os2moError::Http {
                url: self.url.clone(),
                status,
                body: excerpt(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| Os2moError::Decode {
            what: self.url.clone(),
            reason: format!("not JSON ({e}): {}", excerpt(&text)),
        })
    }

    fn transport(&self, e: &ureq::Error) -> Os2moError {
        Os2moError::Transport {
            url: self.url.clone(),
            message: redact(&e.to_string()),
        }
    }

    /// The cached bearer token, fetched again when less than a fifth of its life (at most 30 s)
    /// remains.
    fn token(&self) -> Result<String, Os2moError> {
        let Auth::ClientCredentials {
            auth_server,
            realm,
            client_id,
            client_secret,
        } = &self.cfg.auth
        else {
            return Ok(String::new());
        };
        let mut guard = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = guard.as_ref()
            && Instant::now() < t.renew_at
        {
            return Ok(t.value.clone());
        }
        let url = format!(
            "{}/realms/{realm}/protocol/openid-connect/token",
            auth_server.trim_end_matches('/')
        );
        let auth_err = |message: String| Os2moError::Auth {
            url: url.clone(),
            message,
        };
        let mut attempt = 0;
        let resp = loop {
            let sent = self.agent.post(&url).send_form([
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.as_str()),
            ]);
            match sent {
                Ok(r) if r.status().is_server_error() && attempt < self.cfg.retries => {}
                Ok(r) => break r,
                Err(e) if attempt >= self.cfg.retries => {
                    return Err(auth_err(redact(&e.to_string())));
                }
                Err(_) => {}
            }
            std::thread::sleep(self.cfg.backoff * 2u32.saturating_pow(attempt));
            attempt += 1;
        };
        let status = resp.status().as_u16();
        let mut resp = resp;
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| auth_err(e.to_string()))?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != 200 {
            let why = json
                .get("error_description")
                .or_else(|| json.get("error"))
                .and_then(Value::as_str)
                .map_or_else(|| excerpt(&text), str::to_string);
            return Err(auth_err(format!(
                "HTTP {status}: {why} (client {client_id})"
            )));
        }
        let value = json
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| auth_err("the answer has no access_token".into()))?
            .to_string();
        let life =
            Duration::from_secs(json.get("expires_in").and_then(Value::as_u64).unwrap_or(60));
        let margin = (life / 5).min(Duration::from_secs(30));
        *guard = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + life - margin,
        });
        Ok(value)
    }
}

/// The start of an answer body for an error message (redacted, one line).
fn excerpt(text: &str) -> String {
    let t: String = text
        .chars()
        .take(300)
        .collect::<String>()
        .replace(['\n', '\r'], " ");
    redact(t.trim())
}
