//! The OS2mo backend: dipex's [`Backend`] trait over OS2mo's GraphQL API v30, so every
//! integration works unchanged against a real OS2mo. `http` sends requests (auth, retries),
//! `kinds` maps dipex's kinds onto MO's types, `read` turns queries into paged reads, `write`
//! turns plans into batches of mutations. `docs/os2mo.md` describes the behaviour for operators.

pub mod error;
pub mod http;
pub mod kinds;
pub mod read;
pub mod resolve;
pub mod write;

pub use error::{ErrorKey, GqlError, Os2moError};
pub use http::{Auth, Config};

use crate::{Applied, Backend, BackendError, Query, Registration};
use dipex_model::{Object, Plan};
use serde_json::json;
use uuid::Uuid;

/// A connection to one OS2mo.
pub struct Os2mo {
    t: http::Transport,
}

impl Os2mo {
    /// Set up the client. Nothing is sent until the first read or write.
    pub fn new(cfg: Config) -> Result<Os2mo, Os2moError> {
        Ok(Os2mo {
            t: http::Transport::new(cfg)?,
        })
    }

    pub fn config(&self) -> &Config {
        self.t.config()
    }

    /// GraphQL requests sent so far (for benchmarks and tests).
    pub fn requests(&self) -> usize {
        self.t.requests()
    }

    /// Ask OS2mo who it is: the root organisation's name and uuid (for `dipex check`).
    pub fn ping(&self) -> Result<String, Os2moError> {
        let data = self.t.graphql("check", read::ORG_DOCUMENT, json!({}))?;
        let org = &data["org"];
        Ok(format!(
            "root organisation {:?} ({})",
            org["name"].as_str().unwrap_or("?"),
            org["uuid"].as_str().unwrap_or("?")
        ))
    }

    /// The open (current) registration of every object of the given `registrations` models
    /// (see [`read::registration_model`]): `(model, uuid, start of the registration)`.
    pub fn current_registrations(
        &self,
        models: &[&str],
    ) -> Result<Vec<(String, Uuid, jiff::Timestamp)>, Os2moError> {
        read::current_registrations(&self.t, models)
    }
}

impl Backend for Os2mo {
    fn read(&self, query: &Query) -> Result<Vec<Object>, BackendError> {
        Ok(read::read_raw(&self.t, query)?
            .into_iter()
            .map(read::normalise_person)
            .collect())
    }

    fn apply(&mut self, plan: Plan, _registration: &Registration) -> Result<Applied, BackendError> {
        if plan.is_empty() {
            return Ok(Applied::default());
        }
        let total = plan.len();
        let prepared = write::prepare(&self.t, plan)?;
        if prepared.skipped > 0 {
            tracing::info!(
                "OS2mo: {} of {total} planned writes are already in OS2mo; not sent",
                prepared.skipped
            );
        }
        Ok(write::send(&self.t, prepared.writes)?)
    }

    fn describe(&self) -> String {
        let c = self.t.config();
        format!("OS2mo {} (auth: {:?})", c.graphql_url(), c.auth)
    }

    fn dar_texts(&self) -> Result<Option<std::collections::HashMap<Uuid, String>>, BackendError> {
        Ok(Some(resolve::dar_texts(&self.t)?))
    }
}
