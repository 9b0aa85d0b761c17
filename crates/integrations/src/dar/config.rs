//! The address register's settings (`integrations.dar.*`): their keys, types and defaults.
//! Read from the same settings file as every other namespace
//! ([`crate::settings::Settings::load`]), which names a wrong type by its key.

use crate::settings::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The `integrations.dar.*` settings: the address register and its state database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DarSettings {
    /// The address register's web service: Adressevælger (default) or a DAWA mirror.
    #[serde(rename = "integrations.dar.base_url")]
    pub base_url: Option<String>,
    /// `adressevaelger` or `dawa`; unset: DAWA when `base_url` is set (and not the closed
    /// public DAWA), else Adressevælger.
    #[serde(rename = "integrations.dar.protocol")]
    pub protocol: Option<String>,
    /// Adressevælger's token (default `adressevaelger123`).
    #[serde(rename = "integrations.dar.token")]
    pub token: Option<Secret>,
    /// Concurrent connections to the web service.
    #[serde(rename = "integrations.dar.connections")]
    pub connections: usize,
    /// The register's state database (cache and pending lookups).
    #[serde(rename = "integrations.dar.state_db")]
    pub state_db: Option<PathBuf>,
    /// Consecutive failures after which the register is not asked any more this run.
    #[serde(rename = "integrations.dar.max_failures")]
    pub max_failures: u32,
    /// Seconds after the first lookup of a run after which the register is not asked any more.
    #[serde(rename = "integrations.dar.time_budget_seconds")]
    pub time_budget_seconds: u64,
    /// An offline address register (CSV in DAWA's export format); wins over `base_url`.
    #[serde(rename = "integrations.dar.address_file")]
    pub address_file: Option<PathBuf>,
    #[serde(rename = "integrations.dar.timeout_seconds")]
    pub timeout_seconds: u64,
}

impl Default for DarSettings {
    fn default() -> DarSettings {
        DarSettings {
            base_url: None,
            protocol: None,
            token: None,
            connections: 10,
            state_db: None,
            max_failures: 5,
            time_budget_seconds: 3600,
            address_file: None,
            timeout_seconds: 10,
        }
    }
}
