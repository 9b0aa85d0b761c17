//! A DAWA-compatible HTTP address register, using the "datavask" (address washing) endpoints.
//!
//! The public DAWA service closed in 2026; compatible services and self-hosted mirrors speak the
//! same protocol, so the base URL is a setting. A lookup of street `S` in postal code `P`:
//!
//! 1. `GET {base}/datavask/adresser?betegnelse=<"S, P" percent-encoded>`.
//! 2. If that answers HTTP 404, or JSON with `"kategori": "C"` (an uncertain match), the same query
//!    goes to `{base}/datavask/adgangsadresser`.
//! 3. An answer is accepted only when `kategori` is `"A"` (exact up to case and punctuation) or
//!    `"B"` (a safe match with small spelling differences) *and* `resultater` holds exactly one
//!    element; the UUID is `resultater[0].adresse.id`.
//!
//! Response shape (the same for both endpoints):
//!
//! ```json
//! {"kategori": "A",
//!  "resultater": [{"adresse": {"id": "…", …},
//!                  "aktueladresse": {"id": "…", …},
//!                  "vaskeresultat": {"afstand": 0, …}}]}
//! ```
//!
//! `adresse` is the (possibly historic) version of the address that matched; `aktueladresse` is
//! its current version. On `/datavask/adresser` both are *adresser* (a unit, with floor and door);
//! on `/datavask/adgangsadresser` both are *adgangsadresser* (an entrance: street and house
//! number), so the fallback yields the UUID of the entrance. In both cases the answer is
//! `adresse.id`, as upstream did.
//!
//! Outcomes:
//! * A/B with one result → `Found`. A/B with zero or several results → `NotFound` (no retry).
//! * Kategori C, or HTTP 404, on both endpoints → `NotFound`.
//! * No HTTP answer (DNS, connection refused, TLS, timeout), any other non-2xx status (5xx, but
//!   also 401/403/429, which point to configuration or load rather than to the address), or a
//!   body that is not the expected JSON → `Err`. Such failures are transient or need an operator
//!   and must not be cached as misses.
//!
//! The reverse direction, [`AddressRegister::describe`] of an id `I`, reads DAWA's address objects
//! in their short form:
//!
//! 1. `GET {base}/adresser/{I}?struktur=mini`;
//! 2. on HTTP 404, `GET {base}/adgangsadresser/{I}?struktur=mini` (the id of an entrance).
//!
//! Both answer one flat JSON object, `{"id": "…", "vejnavn": "…", "husnr": "…", …,
//! "supplerendebynavn": … , "postnr": "…", "postnrnavn": "…", "betegnelse": "…"}`, of which only
//! `betegnelse` is used: the whole address text, with floor, door and supplementary town name
//! when the address has them ("Vejnavn 12, 2. tv, Tillægsby, 8000 Bynavn"). HTTP 404 on both is
//! a definitive `None`; any other failure is an `Err`, as for lookups.
//!
//! The base URL may carry credentials (`https://user:pass@host`, sent as basic auth) and query
//! parameters (`https://host?token=…`, kept in front of the request's own parameters). Error messages show the URL
//! with the user info removed and the values of the base URL's own query parameters masked.

use std::time::Duration;

use serde::Deserialize;

use super::{AddressRegister, DarError, Lookup};

/// The two datavask endpoints, in the order they are asked.
const ADDRESS_ENDPOINT: &str = "/datavask/adresser";
const ACCESS_ADDRESS_ENDPOINT: &str = "/datavask/adgangsadresser";

/// The two address object endpoints (`…/{id}`), in the order they are asked by `describe`.
const ADDRESS_OBJECTS: &str = "/adresser/";
const ACCESS_ADDRESS_OBJECTS: &str = "/adgangsadresser/";

/// Responses larger than this are refused (a datavask answer is a few kilobytes).
const MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;

/// A register that asks a DAWA-compatible web service.
#[derive(Debug)]
pub struct HttpRegister {
    agent: ureq::Agent,
    base: BaseUrl,
    connections: usize,
}

/// One keep-alive agent for a web register: `timeout` bounds each request from connecting to
/// reading the whole body; up to `connections` idle connections are kept for reuse.
pub(crate) fn agent(timeout: Duration, connections: usize) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_idle_connections(connections.max(1) * 2)
        .max_idle_connections_per_host(connections.max(1))
        .user_agent(concat!("dipex/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

impl HttpRegister {
    /// A client for the service at `base_url` (for example `https://dawa.kommune.dk`);
    /// `timeout` bounds each request from connecting to reading the whole body. One connection.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, DarError> {
        Self::with_connections(base_url, timeout, 1)
    }

    /// The same, asked over up to `connections` connections at once (see
    /// [`crate::dar::lookup_all`]).
    pub fn with_connections(
        base_url: &str,
        timeout: Duration,
        connections: usize,
    ) -> Result<Self, DarError> {
        let base = BaseUrl::parse(base_url)?;
        Ok(HttpRegister {
            agent: agent(timeout, connections),
            base,
            connections: connections.max(1),
        })
    }

    /// The base URL as shown in messages (no credentials).
    pub fn base_url(&self) -> &str {
        &self.base.shown
    }

    /// One GET of `url` (shown as `shown`): the body of a 2xx answer, `Ok(None)` on HTTP 404,
    /// `Err` otherwise.
    fn get(&self, url: &str, shown: &str) -> Result<Option<Vec<u8>>, DarError> {
        match get(&self.agent, url, shown)? {
            (404, _) => Ok(None),
            (200..=299, body) => Ok(Some(body)),
            (status, _) => Err(DarError::Status {
                url: shown.to_string(),
                status,
            }),
        }
    }

    /// One datavask call. `Ok(None)` means "try the other endpoint" (404 or kategori C).
    fn wash(&self, endpoint: &str, query: &str) -> Result<Option<Lookup>, DarError> {
        let (url, shown) = self.base.url_for(endpoint, query);
        let Some(body) = self.get(&url, &shown)? else {
            return Ok(None);
        };
        let answer: WashAnswer =
            serde_json::from_slice(&body).map_err(|e| DarError::BadResponse {
                url: shown.clone(),
                message: e.to_string(),
            })?;
        match answer.kategori.as_str() {
            "A" | "B" => match answer.resultater.as_slice() {
                [only] => {
                    let id = only
                        .pointer("/adresse/id")
                        .and_then(serde_json::Value::as_str)
                        .and_then(|s| uuid::Uuid::parse_str(s).ok())
                        .ok_or_else(|| DarError::BadResponse {
                            url: shown.clone(),
                            message: "resultater[0].adresse.id is missing or not a UUID"
                                .to_string(),
                        })?;
                    Ok(Some(Lookup::Found(id)))
                }
                _ => Ok(Some(Lookup::NotFound)),
            },
            "C" => Ok(None),
            other => Err(DarError::BadResponse {
                url: shown,
                message: format!("unknown kategori {other:?} (expected A, B or C)"),
            }),
        }
    }

    /// The `betegnelse` of the address object `{objects}{id}`; `Ok(None)` on HTTP 404.
    fn betegnelse(&self, objects: &str, id: uuid::Uuid) -> Result<Option<String>, DarError> {
        let path = format!("{objects}{}", id.hyphenated());
        let (url, shown) = self.base.url_with(&path, "struktur=mini");
        let Some(body) = self.get(&url, &shown)? else {
            return Ok(None);
        };
        let answer: AddressObject =
            serde_json::from_slice(&body).map_err(|e| DarError::BadResponse {
                url: shown.clone(),
                message: e.to_string(),
            })?;
        let text = answer.betegnelse.trim();
        if text.is_empty() {
            return Err(DarError::BadResponse {
                url: shown,
                message: "betegnelse is empty".to_string(),
            });
        }
        Ok(Some(text.to_string()))
    }
}

impl AddressRegister for HttpRegister {
    fn lookup(&self, street: &str, postal_code: &str) -> Result<Lookup, DarError> {
        let query = format!("{}, {}", street.trim(), postal_code.trim());
        if let Some(answer) = self.wash(ADDRESS_ENDPOINT, &query)? {
            return Ok(answer);
        }
        Ok(self
            .wash(ACCESS_ADDRESS_ENDPOINT, &query)?
            .unwrap_or(Lookup::NotFound))
    }

    fn describe(&self, id: uuid::Uuid) -> Result<Option<String>, DarError> {
        if let Some(text) = self.betegnelse(ADDRESS_OBJECTS, id)? {
            return Ok(Some(text));
        }
        self.betegnelse(ACCESS_ADDRESS_OBJECTS, id)
    }

    /// One wash of a made-up address: any definitive answer means the service works.
    fn probe(&self) -> Result<String, DarError> {
        self.lookup("Testvej 1", "8000")?;
        Ok(format!(
            "DAWA-compatible service {} answers",
            self.base.shown
        ))
    }

    fn connections(&self) -> usize {
        self.connections
    }
}

/// One GET of `url` (shown as `shown` in errors): the status and body of any HTTP answer, `Err`
/// when there was none. A transport error on a reused keep-alive connection (the server may
/// have closed it meanwhile) is tried once more; a timeout never is.
pub(crate) fn get(agent: &ureq::Agent, url: &str, shown: &str) -> Result<(u16, Vec<u8>), DarError> {
    let scrub = |message: String| message.replace(url, shown);
    let transport = |e: ureq::Error| DarError::Transport {
        url: shown.to_string(),
        message: scrub(e.to_string()),
    };
    let call = || agent.get(url).header("Accept", "application/json").call();
    let mut response = match call() {
        Ok(r) => r,
        Err(e @ ureq::Error::Timeout(_)) => return Err(transport(e)),
        Err(ureq::Error::Io(_)) => call().map_err(transport)?,
        Err(e) => return Err(transport(e)),
    };
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_vec()
        .map_err(transport)?;
    Ok((status, body))
}

/// The part of a datavask answer that is used; a result's `adresse.id` is read only when it is
/// the one accepted, so the rest of a result may take any shape.
#[derive(Debug, Deserialize)]
struct WashAnswer {
    kategori: String,
    resultater: Vec<serde_json::Value>,
}

/// The part of an address object (`struktur=mini`, or the full form) that is used.
#[derive(Debug, Deserialize)]
struct AddressObject {
    betegnelse: String,
}

/// A parsed base URL: what requests go to, and what messages show.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl {
    /// `scheme://[userinfo@]host[:port][/path]`, no trailing slash.
    prefix: String,
    /// The same without user info.
    shown_prefix: String,
    /// The base URL's own query (without `?`), or empty.
    query: String,
    /// The same with every value masked.
    shown_query: String,
    /// The whole base URL as shown in messages.
    pub(crate) shown: String,
}

impl BaseUrl {
    pub(crate) fn parse(raw: &str) -> Result<Self, DarError> {
        let raw = raw.trim();
        let invalid = |reason: &str| DarError::InvalidBaseUrl {
            url: redact_userinfo(raw),
            reason: reason.to_string(),
        };
        let lower = raw.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(invalid("must start with http:// or https://"));
        }
        if raw.contains('#') {
            return Err(invalid("must not contain a fragment (#)"));
        }
        let (prefix, query) = match raw.split_once('?') {
            Some((p, q)) => (p, q),
            None => (raw, ""),
        };
        let scheme_end = prefix.find("://").map(|i| i + 3).unwrap_or(0);
        let authority = prefix[scheme_end..].split('/').next().unwrap_or("");
        if authority.rsplit('@').next().unwrap_or("").is_empty() {
            return Err(invalid("has no host"));
        }
        let prefix = prefix.trim_end_matches('/').to_string();
        let shown_prefix = redact_userinfo(&prefix);
        let shown_query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
        let shown = if shown_query.is_empty() {
            shown_prefix.clone()
        } else {
            format!("{shown_prefix}?{shown_query}")
        };
        Ok(BaseUrl {
            prefix,
            shown_prefix,
            query: query.trim_matches('&').to_string(),
            shown_query,
            shown,
        })
    }

    /// The request URL and its shown form for `endpoint` with `betegnelse=query`.
    fn url_for(&self, endpoint: &str, query: &str) -> (String, String) {
        self.url_with(endpoint, &format!("betegnelse={}", percent_encode(query)))
    }

    /// The request URL and its shown form for `path` with the (already encoded) parameter
    /// `param`, after the base URL's own query.
    pub(crate) fn url_with(&self, path: &str, param: &str) -> (String, String) {
        let join = |prefix: &str, base_query: &str| {
            if base_query.is_empty() {
                format!("{prefix}{path}?{param}")
            } else {
                format!("{prefix}{path}?{base_query}&{param}")
            }
        };
        (
            join(&self.prefix, &self.query),
            join(&self.shown_prefix, &self.shown_query),
        )
    }
}

/// `url` without the `user:password@` part of its authority.
fn redact_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Percent-encode everything but RFC 3986's unreserved characters (UTF-8 bytes, upper-case hex).
pub(crate) fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
    }
    out
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn percent_encoding_of_danish_text() {
        assert_eq!(
            percent_encode("Æblevej 1, 8000"),
            "%C3%86blevej%201%2C%208000"
        );
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("&=?/+#"), "%26%3D%3F%2F%2B%23");
    }

    #[test]
    fn base_url_hides_credentials_and_query_values() {
        let b = BaseUrl::parse("https://user:secret@dar.example.org/api/?token=abc").unwrap();
        let (url, shown) = b.url_for(ADDRESS_ENDPOINT, "Vej 1, 8000");
        assert_eq!(
            url,
            "https://user:secret@dar.example.org/api/datavask/adresser?token=abc&betegnelse=Vej%201%2C%208000"
        );
        assert_eq!(
            shown,
            "https://dar.example.org/api/datavask/adresser?token=***&betegnelse=Vej%201%2C%208000"
        );
        assert_eq!(b.shown, "https://dar.example.org/api?token=***");
    }

    #[test]
    fn base_url_rejects_nonsense() {
        for bad in [
            "ftp://x",
            "dar.example.org",
            "https://",
            "https:///path",
            "http://u@/",
            "http://h/#f",
        ] {
            let err = BaseUrl::parse(bad).unwrap_err();
            assert!(
                matches!(err, DarError::InvalidBaseUrl { .. }),
                "{bad}: {err}"
            );
        }
        let err = BaseUrl::parse("ftp://u:pw@h").unwrap_err().to_string();
        assert!(!err.contains("pw"), "{err}");
    }
}
