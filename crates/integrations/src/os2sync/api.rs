//! The OS2Sync REST client (`specs/os2sync.md` §1): `POST`/`DELETE`/`GET` of org units and
//! users, and the hierarchy job (`GET /hierarchy`, then polling `GET /hierarchy/{id}` until the
//! result is ready). Every request carries the `CVR` header and, when configured, `ApiKey`.
//! Secrets never appear in errors.

use super::config::Config;
use super::payload::{OrgUnit, User};
use serde_json::Value;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("OS2Sync {method} {url}: {message}")]
    Transport {
        method: &'static str,
        url: String,
        message: String,
    },
    #[error("OS2Sync {method} {url}: HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("OS2Sync {url}: unexpected answer: {reason}")]
    Answer { url: String, reason: String },
    #[error("OS2Sync hierarchy {id}: not ready after {secs} s")]
    NotReady { id: Uuid, secs: u64 },
    #[error(
        "OS2Sync hierarchy {id}: OS2Sync could not read FK Organisation (Status {status}); check its connection to Serviceplatformen"
    )]
    HierarchyFailed { id: Uuid, status: i64 },
}

/// What FK Organisation holds, as OS2Sync's hierarchy job reports it.
#[derive(Clone, Debug, Default)]
pub struct Hierarchy {
    pub units: Vec<Uuid>,
    pub users: Vec<Uuid>,
}

pub struct Api {
    agent: ureq::Agent,
    base: String,
    cvr: String,
    api_key: Option<String>,
}

fn excerpt(s: &str) -> String {
    dipex_backend::os2mo::error::redact(
        &s.chars()
            .take(300)
            .collect::<String>()
            .replace(['\r', '\n'], " "),
    )
}

impl Api {
    pub fn new(cfg: &Config) -> Api {
        let mut b = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .user_agent(concat!("dipex/", env!("CARGO_PKG_VERSION")));
        if !cfg.verify_tls {
            b = b.tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            );
        }
        Api {
            agent: ureq::Agent::new_with_config(b.build()),
            base: cfg.api_url.clone(),
            cvr: cfg.cvr.clone(),
            api_key: cfg.api_key.as_ref().map(|k| k.expose().to_string()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// One request; the status and the body.
    fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, String), ApiError> {
        let url = self.url(path);
        let transport = |e: ureq::Error| ApiError::Transport {
            method,
            url: url.clone(),
            message: excerpt(&e.to_string()),
        };
        let resp = match (method, body) {
            ("POST", Some(b)) => {
                let mut r = self
                    .agent
                    .post(&url)
                    .header("CVR", &self.cvr)
                    .header("Content-Type", "application/json");
                if let Some(k) = &self.api_key {
                    r = r.header("ApiKey", k);
                }
                r.send(b).map_err(transport)?
            }
            ("DELETE", _) => {
                let mut r = self.agent.delete(&url).header("CVR", &self.cvr);
                if let Some(k) = &self.api_key {
                    r = r.header("ApiKey", k);
                }
                r.call().map_err(transport)?
            }
            _ => {
                let mut r = self.agent.get(&url).header("CVR", &self.cvr);
                if let Some(k) = &self.api_key {
                    r = r.header("ApiKey", k);
                }
                r.call().map_err(transport)?
            }
        };
        let status = resp.status().as_u16();
        let mut resp = resp;
        let text = resp
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .map_err(transport)?;
        Ok((status, text))
    }

    fn ok(
        &self,
        method: &'static str,
        path: &str,
        body: Option<String>,
    ) -> Result<String, ApiError> {
        let (status, text) = self.call(method, path, body)?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(ApiError::Status {
                method,
                url: self.url(path),
                status,
                body: excerpt(&text),
            })
        }
    }

    /// The unit as FK Organisation has it; `None` when OS2Sync answers 404.
    pub fn get_org_unit(&self, uuid: Uuid) -> Result<Option<OrgUnit>, ApiError> {
        let path = format!("orgUnit/{uuid}");
        let (status, text) = self.call("GET", &path, None)?;
        match status {
            404 => Ok(None),
            200..=299 => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ApiError::Answer {
                    url: self.url(&path),
                    reason: format!("not an OrgUnitRegistration: {e}"),
                }),
            _ => Err(ApiError::Status {
                method: "GET",
                url: self.url(&path),
                status,
                body: excerpt(&text),
            }),
        }
    }

    pub fn post_org_unit(&self, unit: &OrgUnit) -> Result<(), ApiError> {
        self.ok(
            "POST",
            "orgUnit",
            Some(serde_json::to_string(unit).expect("serialises")),
        )
        .map(|_| ())
    }

    pub fn post_user(&self, user: &User) -> Result<(), ApiError> {
        self.ok(
            "POST",
            "user",
            Some(serde_json::to_string(user).expect("serialises")),
        )
        .map(|_| ())
    }

    /// Delete an org unit or a user (`kind` is `orgUnit` or `user`); 404 counts as done.
    pub fn delete(&self, kind: &str, uuid: Uuid) -> Result<(), ApiError> {
        let path = format!("{kind}/{uuid}");
        let (status, text) = self.call("DELETE", &path, None)?;
        match status {
            200..=299 | 404 => Ok(()),
            _ => Err(ApiError::Status {
                method: "DELETE",
                url: self.url(&path),
                status,
                body: excerpt(&text),
            }),
        }
    }

    /// Start reading FK Organisation; the job's id.
    pub fn start_hierarchy(&self) -> Result<Uuid, ApiError> {
        let text = self.ok("GET", "hierarchy", None)?;
        let id = text.trim().trim_matches('"');
        Uuid::parse_str(id).map_err(|_| ApiError::Answer {
            url: self.url("hierarchy"),
            reason: format!("{} is not a job id", excerpt(id)),
        })
    }

    /// Wait for the hierarchy job's result (404 until ready).
    pub fn hierarchy(
        &self,
        id: Uuid,
        wait: Duration,
        poll: Duration,
    ) -> Result<Hierarchy, ApiError> {
        let path = format!("hierarchy/{id}");
        let start = Instant::now();
        loop {
            let (status, text) = self.call("GET", &path, None)?;
            match status {
                404 if start.elapsed() < wait => std::thread::sleep(poll),
                404 => {
                    return Err(ApiError::NotReady {
                        id,
                        secs: wait.as_secs(),
                    });
                }
                200..=299 => {
                    let v: Value = serde_json::from_str(&text).map_err(|e| ApiError::Answer {
                        url: self.url(&path),
                        reason: e.to_string(),
                    })?;
                    let result = v.get("Result").filter(|r| !r.is_null());
                    let Some(result) = result else {
                        return Err(ApiError::HierarchyFailed {
                            id,
                            status: v.get("Status").and_then(Value::as_i64).unwrap_or(-1),
                        });
                    };
                    let uuids = |key: &str| -> Vec<Uuid> {
                        result
                            .get(key)
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(|o| o.get("Uuid")?.as_str()?.parse().ok())
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    return Ok(Hierarchy {
                        units: uuids("OUs"),
                        users: uuids("Users"),
                    });
                }
                _ => {
                    return Err(ApiError::Status {
                        method: "GET",
                        url: self.url(&path),
                        status,
                        body: excerpt(&text),
                    });
                }
            }
        }
    }
}
