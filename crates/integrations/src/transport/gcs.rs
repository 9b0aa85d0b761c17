//! Google Cloud Storage transport: list a bucket and download objects over the GCS JSON API, for
//! the OPUS importer (`integrations.opus.gcloud_bucket_name`).
//!
//! Plain HTTPS with the workspace's sync `ureq` client (rustls with ring), no Google SDK:
//!
//! * listing: `GET {endpoint}/storage/v1/b/{bucket}/o`, following `nextPageToken` until the last
//!   page; every object is listed (a bucket has no folders, names may contain `/`);
//! * download: `GET {endpoint}/storage/v1/b/{bucket}/o/{percent-encoded name}?alt=media`,
//!   streamed in 64 KiB chunks to the caller's writer.
//!
//! Every request carries `Authorization: Bearer <access token>`. The token comes from
//! ([`GcsCredentials`]):
//!
//! * a service-account JSON key file (what `GOOGLE_APPLICATION_CREDENTIALS` names): an RS256-signed
//!   JWT (`iss` = the key's `client_email`, `aud` = its `token_uri`, `scope` =
//!   [`SCOPE`], one hour) exchanged at the key's `token_uri` with the
//!   `urn:ietf:params:oauth:grant-type:jwt-bearer` grant; or
//! * the metadata server of the Google Cloud VM the program runs on
//!   (`Metadata-Flavor: Google` header), the "service account set up on the server".
//!
//! A listing page or the start of a download is tried again after a network error, 429 or 5xx
//! ([`GcsConfig::attempts`], waits doubling from [`GcsConfig::wait`]); bytes already written are
//! never repeated. Tokens are cached per process until a minute before they expire. The JWT's `iat`/`exp` need
//! the wall clock, read here with `SystemTime::now()` (a token's lifetime is no business
//! decision). Errors name the bucket, the step and the object, never a token or the key.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;

pub use super::RemoteFile;
use crate::dar::http::percent_encode;

/// Google's endpoint for the JSON API.
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
/// The metadata server's token URL on a Google Cloud VM.
pub const DEFAULT_METADATA_URL: &str =
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";
/// Read-only access to objects: all dipex needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_only";
/// Timeout of every request when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts of a request on transient failures when none are configured.
pub const DEFAULT_ATTEMPTS: u32 = 4;
/// First wait between attempts when none is configured (then 2 s, 4 s).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);
/// Google's token endpoint, when a key file does not name one.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Pages are followed at most this often (a million objects at 1,000 per page).
const MAX_PAGES: usize = 1000;

/// Where the access token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcsCredentials {
    /// A service-account JSON key file.
    KeyFile(PathBuf),
    /// The metadata server at this token URL (normally [`DEFAULT_METADATA_URL`]).
    Metadata(String),
}

/// Which bucket, and how to reach it. Holds no secret (the key stays in its file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcsConfig {
    pub bucket: String,
    /// Normally [`DEFAULT_ENDPOINT`]; tests point it at loopback.
    pub endpoint: String,
    pub credentials: GcsCredentials,
    /// Timeout of each request (a download's whole transfer included), normally
    /// [`DEFAULT_TIMEOUT`] per request and 30 minutes per download.
    pub timeout: Duration,
    /// Attempts of a listing page or the start of a download when the request fails or GCS
    /// answers 429 or 5xx (Google asks clients to retry those), normally [`DEFAULT_ATTEMPTS`].
    pub attempts: u32,
    /// Wait before the second attempt, doubled for each further one; normally [`DEFAULT_WAIT`].
    pub wait: Duration,
}

impl GcsConfig {
    /// A config for Google's endpoint with the default timeout.
    pub fn new(bucket: impl Into<String>, credentials: GcsCredentials) -> GcsConfig {
        GcsConfig {
            bucket: bucket.into(),
            endpoint: DEFAULT_ENDPOINT.into(),
            credentials,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            wait: DEFAULT_WAIT,
        }
    }
}

/// The step an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading or using the service-account key file.
    Key,
    /// Getting an access token (token endpoint or metadata server).
    Token,
    /// Listing the bucket.
    List,
    /// Downloading an object.
    Download,
    /// Writing the downloaded data to the caller's writer.
    WriteLocal,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Key => "reading the service-account key",
            Step::Token => "getting an access token",
            Step::List => "listing",
            Step::Download => "download",
            Step::WriteLocal => "writing the downloaded data",
        })
    }
}

/// Why a GCS operation failed. Names the bucket, the step and the object when there is one;
/// never a token or the key.
#[derive(Debug, thiserror::Error)]
pub enum GcsError {
    /// The server answered with an error status (GCS's JSON error message included).
    #[error(
        "Google Cloud Storage bucket {bucket}: {step}{}: HTTP {status}: {message}",
        of(object)
    )]
    Status {
        bucket: String,
        step: Step,
        object: Option<String>,
        status: u16,
        message: String,
    },
    /// The request failed (network, timeout, TLS) or the answer made no sense.
    #[error(
        "Google Cloud Storage bucket {bucket}: {step}{} failed: {message}",
        of(object)
    )]
    Failed {
        bucket: String,
        step: Step,
        object: Option<String>,
        message: String,
    },
}

fn of(object: &Option<String>) -> String {
    match object {
        Some(o) => format!(" of {o}"),
        None => String::new(),
    }
}

impl GcsError {
    pub fn step(&self) -> Step {
        match self {
            GcsError::Status { step, .. } | GcsError::Failed { step, .. } => *step,
        }
    }
    /// The HTTP status, when the server answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            GcsError::Status { status, .. } => Some(*status),
            GcsError::Failed { .. } => None,
        }
    }
}

struct Ctx<'a> {
    cfg: &'a GcsConfig,
    agent: ureq::Agent,
}

impl<'a> Ctx<'a> {
    fn new(cfg: &'a GcsConfig, timeout: Duration) -> Ctx<'a> {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("dipex/", env!("CARGO_PKG_VERSION")))
            .build();
        Ctx {
            cfg,
            agent: ureq::Agent::new_with_config(config),
        }
    }

    fn failed(&self, step: Step, object: Option<&str>, message: impl fmt::Display) -> GcsError {
        GcsError::Failed {
            bucket: self.cfg.bucket.clone(),
            step,
            object: object.map(str::to_owned),
            message: one_line(&message.to_string()),
        }
    }

    fn status(&self, step: Step, object: Option<&str>, status: u16, body: &str) -> GcsError {
        GcsError::Status {
            bucket: self.cfg.bucket.clone(),
            step,
            object: object.map(str::to_owned),
            status,
            message: error_message(body),
        }
    }

    /// GET `url` with the token, again after a wait on a network error, 429 or 5xx.
    fn get(&self, url: &str, token: &str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let attempts = self.cfg.attempts.max(1);
        let mut wait = self.cfg.wait;
        let mut attempt = 1;
        loop {
            let result = self
                .agent
                .get(url)
                .header("Authorization", &format!("Bearer {token}"))
                .call();
            let transient = match &result {
                Ok(r) => {
                    let s = r.status().as_u16();
                    s == 429 || s >= 500
                }
                Err(_) => true,
            };
            if !transient || attempt >= attempts {
                return result;
            }
            tracing::debug!(
                bucket = %self.cfg.bucket,
                "Google Cloud Storage request failed (attempt {attempt} of {attempts}); trying again"
            );
            std::thread::sleep(wait);
            wait *= 2;
            attempt += 1;
        }
    }

    fn base(&self) -> String {
        format!(
            "{}/storage/v1/b/{}/o",
            self.cfg.endpoint.trim_end_matches('/'),
            percent_encode(&self.cfg.bucket)
        )
    }
}

/// Text on one line, at most 300 characters.
fn one_line(s: &str) -> String {
    let s: String = s.chars().take(300).collect();
    s.replace(['\r', '\n'], " ")
}

/// GCS's error message from a JSON error body (`{"error": {"message": ...}}`), else the body.
fn error_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct E {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: Option<String>,
    }
    match serde_json::from_str::<E>(body) {
        Ok(E {
            error: Inner { message: Some(m) },
        }) => one_line(&m),
        _ => one_line(body.trim()),
    }
}

/// List every object in the bucket, sorted by name; sizes and `updated` times (UTC).
pub fn list(cfg: &GcsConfig) -> Result<Vec<RemoteFile>, GcsError> {
    let ctx = Ctx::new(cfg, cfg.timeout);
    let token = token(&ctx)?;
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Page {
        #[serde(default)]
        items: Vec<Item>,
        next_page_token: Option<String>,
    }
    #[derive(Deserialize)]
    struct Item {
        name: String,
        size: Option<String>,
        updated: Option<String>,
    }
    let mut files = Vec::new();
    let mut page_token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut url = ctx.base();
        if let Some(t) = &page_token {
            url.push_str(&format!("?pageToken={}", percent_encode(t)));
        }
        let resp = ctx
            .get(&url, &token)
            .map_err(|e| ctx.failed(Step::List, None, e))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| ctx.failed(Step::List, None, e))?;
        if status != 200 {
            return Err(ctx.status(Step::List, None, status, &body));
        }
        let page: Page = serde_json::from_str(&body)
            .map_err(|e| ctx.failed(Step::List, None, format!("not a listing: {e}")))?;
        for item in page.items {
            if item.name.ends_with('/') {
                continue; // a "folder" placeholder
            }
            files.push(RemoteFile {
                size: item.size.and_then(|s| s.parse().ok()),
                modified: item.updated.and_then(|u| u.parse().ok()),
                name: item.name,
            });
        }
        match page.next_page_token {
            Some(t) if !t.is_empty() => page_token = Some(t),
            _ => {
                files.sort_by(|a, b| a.name.cmp(&b.name));
                return Ok(files);
            }
        }
    }
    Err(ctx.failed(
        Step::List,
        None,
        format!("more than {MAX_PAGES} pages; giving up"),
    ))
}

/// Download the object `name` into `to`, streamed; returns the number of bytes written.
pub fn download(cfg: &GcsConfig, name: &str, to: &mut dyn Write) -> Result<u64, GcsError> {
    // A 200 MB dump on a slow line takes longer than one request's timeout.
    let ctx = Ctx::new(cfg, cfg.timeout.max(Duration::from_secs(30 * 60)));
    let token = token(&ctx)?;
    let object = Some(name);
    let url = format!("{}/{}?alt=media", ctx.base(), percent_encode(name));
    let resp = ctx
        .get(&url, &token)
        .map_err(|e| ctx.failed(Step::Download, object, e))?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body().into_reader();
    if status != 200 {
        let mut text = String::new();
        let _ = body.take(1 << 20).read_to_string(&mut text);
        return Err(ctx.status(Step::Download, object, status, &text));
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ctx.failed(Step::Download, object, e)),
        };
        to.write_all(&buf[..n])
            .map_err(|e| ctx.failed(Step::WriteLocal, object, e))?;
        total += n as u64;
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// Access tokens

struct Cached {
    token: String,
    renew_at: Instant,
}

/// Tokens by credential source, for the whole process.
static TOKENS: Mutex<Option<HashMap<String, Cached>>> = Mutex::new(None);

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

fn token(ctx: &Ctx<'_>) -> Result<String, GcsError> {
    let key = match &ctx.cfg.credentials {
        GcsCredentials::KeyFile(p) => format!("key:{}", p.display()),
        GcsCredentials::Metadata(u) => format!("metadata:{u}"),
    };
    {
        let cache = TOKENS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.as_ref().and_then(|m| m.get(&key))
            && Instant::now() < c.renew_at
        {
            return Ok(c.token.clone());
        }
    }
    let answer = match &ctx.cfg.credentials {
        GcsCredentials::KeyFile(p) => token_from_key(ctx, p)?,
        GcsCredentials::Metadata(url) => token_from_metadata(ctx, url)?,
    };
    let life = Duration::from_secs(answer.expires_in.unwrap_or(3600));
    let margin = Duration::from_secs(60).min(life / 2);
    let mut cache = TOKENS.lock().unwrap_or_else(|e| e.into_inner());
    cache.get_or_insert_with(HashMap::new).insert(
        key,
        Cached {
            token: answer.access_token.clone(),
            renew_at: Instant::now() + life - margin,
        },
    );
    Ok(answer.access_token)
}

/// The parts of a service-account key file dipex uses.
#[derive(Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

fn token_from_key(ctx: &Ctx<'_>, path: &std::path::Path) -> Result<TokenAnswer, GcsError> {
    let key_err = |m: String| ctx.failed(Step::Key, None, format!("{}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| key_err(e.to_string()))?;
    // serde_json's messages quote no values for a type mismatch, but never show them anyway.
    let key: ServiceAccountKey = serde_json::from_str(&text).map_err(|e| {
        key_err(format!(
            "not a service-account JSON key (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let token_uri = key
        .token_uri
        .clone()
        .unwrap_or_else(|| DEFAULT_TOKEN_URI.into());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let jwt = sign_jwt(&key, &token_uri, now).map_err(key_err)?;
    let resp = ctx
        .agent
        .post(&token_uri)
        .send_form([
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", jwt.as_str()),
        ])
        .map_err(|e| ctx.failed(Step::Token, None, format!("{token_uri}: {e}")))?;
    token_answer(ctx, &token_uri, resp)
}

fn token_from_metadata(ctx: &Ctx<'_>, url: &str) -> Result<TokenAnswer, GcsError> {
    let resp = ctx
        .agent
        .get(url)
        .header("Metadata-Flavor", "Google")
        .call()
        .map_err(|e| {
            ctx.failed(
                Step::Token,
                None,
                format!(
                    "metadata server {url}: {e} (outside Google Cloud, set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file)"
                ),
            )
        })?;
    token_answer(ctx, url, resp)
}

fn token_answer(
    ctx: &Ctx<'_>,
    from: &str,
    resp: ureq::http::Response<ureq::Body>,
) -> Result<TokenAnswer, GcsError> {
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| ctx.failed(Step::Token, None, format!("{from}: {e}")))?;
    if status != 200 {
        // OAuth errors are `{"error": "...", "error_description": "..."}`; neither holds a secret.
        #[derive(Deserialize)]
        struct OAuthError {
            error: String,
            error_description: Option<String>,
        }
        let message = match serde_json::from_str::<OAuthError>(&body) {
            Ok(e) => one_line(&format!(
                "{}{}",
                e.error,
                e.error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )),
            Err(_) => error_message(&body),
        };
        return Err(GcsError::Status {
            bucket: ctx.cfg.bucket.clone(),
            step: Step::Token,
            object: None,
            status,
            message: format!("{from}: {message}"),
        });
    }
    // Never quote the body: it holds the token.
    serde_json::from_str(&body)
        .map_err(|_| ctx.failed(Step::Token, None, format!("{from}: not a token answer")))
}

/// The signed JWT assertion for the token endpoint.
fn sign_jwt(key: &ServiceAccountKey, aud: &str, now: u64) -> Result<String, String> {
    use data_encoding::BASE64URL_NOPAD as B64;
    let der = PrivatePkcs8KeyDer::from_pem_slice(key.private_key.as_bytes())
        .map_err(|_| "private_key is not a PEM PKCS#8 private key".to_string())?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| format!("private_key is not a usable RSA key ({e})"))?;
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = &key.private_key_id {
        header["kid"] = kid.clone().into();
    }
    let claims = serde_json::json!({
        "iss": key.client_email,
        "scope": SCOPE,
        "aud": aud,
        "iat": now,
        "exp": now + 3600,
    });
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string().as_bytes()),
        B64.encode(claims.to_string().as_bytes())
    );
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "signing the token request failed".to_string())?;
    Ok(format!("{input}.{}", B64.encode(&sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcs_error_messages_are_extracted() {
        assert_eq!(
            error_message(
                r#"{"error":{"code":404,"message":"The specified bucket does not exist."}}"#
            ),
            "The specified bucket does not exist."
        );
        assert_eq!(error_message("plain\ntext"), "plain text");
    }
}
