//! The LDAP client for Active Directory (ldap3's sync `LdapConn`, rustls with ring): connect to
//! the first domain controller that answers (LDAPS, or StartTLS, certificates always verified
//! against the webpki roots plus `ca_file`), simple bind as `system_user`, then one paged search
//! (simple paged results control, RFC 2696) for every account with a CPR value. Errors name the
//! server and the step (connect, bind, search), never the password or a CPR number.

use super::{AdSettings, Directory, RawEntry, Tls, search_filter};
use ldap3::controls::{Control, ControlType, MakeCritical, PagedResults};
use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;
use std::time::Duration;

/// Why the directory could not be read. Never carries the password or a CPR number.
#[derive(Debug, thiserror::Error)]
pub enum AdError {
    #[error("Active Directory: CA file {file}: {message}")]
    CaFile { file: String, message: String },
    #[error("Active Directory: TLS setup: {0}")]
    Tls(String),
    #[error("Active Directory: could not connect to any server (step: connect{}): {}", if *.starttls { ", StartTLS" } else { "" }, .failures.iter().map(|(s, m)| format!("{s}: {m}")).collect::<Vec<_>>().join("; "))]
    Connect {
        starttls: bool,
        failures: Vec<(String, String)>,
    },
    #[error("Active Directory {server} (step: bind): bind as {user:?} failed: {message}")]
    Bind {
        server: String,
        user: String,
        message: String,
    },
    #[error("Active Directory {server} (step: search): search under {base:?} failed: {message}")]
    Search {
        server: String,
        base: String,
        message: String,
    },
}

/// The attributes dipex reads.
const GUID: &str = "objectGUID";
const SAM: &str = "sAMAccountName";

/// rustls with ring: the webpki roots plus the certificates of `ca_file`.
fn tls_config(s: &AdSettings) -> Result<Arc<ClientConfig>, AdError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &s.ca_file {
        let ca_err = |message: String| AdError::CaFile {
            file: path.display().to_string(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| ca_err(e.to_string()))?;
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_err("no certificates in it".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AdError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connect to the first server that answers and bind. Returns the connection and its URL.
fn connect(s: &AdSettings) -> Result<(LdapConn, String), AdError> {
    let timeout = Duration::from_secs(s.timeout_seconds);
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(s.tls == Tls::Starttls);
    if s.tls != Tls::None {
        settings = settings.set_config(tls_config(s)?);
    }
    let mut failures = Vec::new();
    for url in s.urls() {
        match LdapConn::with_settings(settings.clone(), &url) {
            Ok(mut conn) => {
                tracing::debug!(server = %url, "Active Directory: connected");
                // A refused bind is not retried on the next server: the password is the same
                // everywhere, and each attempt counts towards the account's lockout.
                let bound = conn
                    .with_timeout(timeout)
                    .simple_bind(&s.system_user, s.password.expose())
                    .and_then(|r| r.success());
                return match bound {
                    Ok(_) => Ok((conn, url)),
                    Err(e) => Err(AdError::Bind {
                        server: url,
                        user: s.system_user.clone(),
                        message: e.to_string(),
                    }),
                };
            }
            Err(e) => failures.push((url, e.to_string())),
        }
    }
    Err(AdError::Connect {
        starttls: s.tls == Tls::Starttls,
        failures,
    })
}

/// The first value of `name` (attribute names compare without regard to case), as bytes.
fn value(e: &SearchEntry, name: &str) -> Option<Vec<u8>> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().map(|s| s.as_bytes().to_vec()))
        .or_else(|| {
            e.bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first().cloned())
        })
}

fn text(e: &SearchEntry, name: &str) -> Option<String> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().cloned())
}

/// Read every account with a CPR value: one connection, one bind, one paged search.
pub fn read_directory(s: &AdSettings) -> Result<Directory, AdError> {
    let (mut conn, server) = connect(s)?;
    let timeout = Duration::from_secs(s.timeout_seconds);
    let filter = search_filter(s);
    let attrs = [s.cpr_field.as_str(), GUID, SAM];
    let search_err = |message: String| AdError::Search {
        server: server.clone(),
        base: s.search_base.clone(),
        message,
    };
    let mut raw: Vec<RawEntry> = Vec::new();
    let mut cookie: Vec<u8> = Vec::new();
    let mut pages = 0;
    loop {
        let page = PagedResults {
            size: s.page_size as i32,
            cookie: std::mem::take(&mut cookie),
        };
        let result = conn
            .with_timeout(timeout)
            .with_controls(page.critical())
            .search(&s.search_base, Scope::Subtree, &filter, attrs)
            .and_then(|r| r.success())
            .map_err(|e| search_err(e.to_string()))?;
        pages += 1;
        let (entries, done) = result;
        for e in entries {
            // Continuation references (AD points at other partitions) and intermediate
            // responses carry no account.
            if e.is_ref() || e.is_intermediate() {
                continue;
            }
            let e = SearchEntry::construct(e);
            raw.push(RawEntry {
                cpr: text(&e, &s.cpr_field),
                guid: value(&e, GUID),
                sam: text(&e, SAM),
            });
        }
        cookie = done
            .ctrls
            .iter()
            .find_map(|c| match c {
                Control(Some(ControlType::PagedResults), raw) => {
                    Some(raw.parse::<PagedResults>().cookie)
                }
                _ => None,
            })
            .unwrap_or_default();
        if cookie.is_empty() {
            break;
        }
    }
    let _ = conn.unbind();
    let mut d = Directory::from_entries(raw, &s.cpr_separator);
    d.stats.pages = pages;
    tracing::debug!(server = %server, pages, entries = d.stats.entries, "Active Directory: search done");
    Ok(d)
}
