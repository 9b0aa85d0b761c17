//! The OS2Sync exporter's settings (`os2sync.*`, `municipality.cvr`; `OS2SYNC_*` in the
//! environment wins, handled by [`crate::settings`]) checked and ready to use, including the
//! compiled Jinja templates.

use crate::settings::{Secret, Settings};
use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("setting {key:?} is required for the OS2Sync export")]
    Missing { key: &'static str },
    #[error("setting {key:?}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("os2sync.templates: template {key:?} has a syntax error: {reason}")]
    Template { key: String, reason: String },
}

/// Everything the exporter is told by the settings (`Debug` hides the ApiKey).
#[derive(Debug)]
pub struct Config {
    pub cvr: String,
    pub api_url: String,
    pub api_key: Option<crate::settings::Secret>,
    pub verify_tls: bool,
    pub top_unit: Uuid,
    pub hash_cache: PathBuf,
    pub xfer_cpr: bool,
    pub autowash: bool,
    pub phone_classes: Vec<String>,
    pub landline_classes: Vec<String>,
    pub email_classes: Vec<String>,
    pub ignored_levels: Vec<String>,
    pub ignored_types: Vec<String>,
    pub sync_managers: bool,
    pub use_contact_for_tasks: bool,
    pub enable_kle: bool,
    pub engagement_address: Vec<String>,
    pub uuid_from_it_systems: Vec<String>,
    pub truncate: usize,
    pub user_key_it_system: String,
    pub hierarchy_names: Vec<String>,
    pub filter_users_by_it_system: bool,
    pub extension_as_job_function: bool,
    pub templates: Templates,
    /// How long and how often to ask OS2Sync for the hierarchy result.
    pub hierarchy_wait: std::time::Duration,
    pub hierarchy_poll: std::time::Duration,
}

/// The compiled `os2sync.templates` (strict: an unknown variable is an error; no escaping).
pub struct Templates {
    env: Environment<'static>,
    keys: Vec<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Templates({:?})", self.keys)
    }
}

impl Templates {
    pub fn new(
        sources: &std::collections::BTreeMap<String, String>,
    ) -> Result<Templates, ConfigError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for (key, source) in sources {
            env.add_template_owned(key.clone(), source.clone())
                .map_err(|e| ConfigError::Template {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(Templates {
            env,
            keys: sources.keys().cloned().collect(),
        })
    }

    /// Render template `key` with `context`; `None` when there is no such template.
    pub fn render(&self, key: &str, context: &serde_json::Value) -> Option<Result<String, String>> {
        if !self.keys.iter().any(|k| k == key) {
            return None;
        }
        let t = self.env.get_template(key).expect("added in new");
        Some(
            t.render(minijinja::value::Serde(context))
                .map_err(|e| e.to_string()),
        )
    }
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let cvr = s
            .municipality_cvr
            .clone()
            .filter(|c| !c.trim().is_empty())
            .ok_or(ConfigError::Missing {
                key: "municipality.cvr",
            })?;
        let top = s
            .os2sync
            .top_unit_uuid
            .as_deref()
            .ok_or(ConfigError::Missing {
                key: "os2sync.top_unit_uuid",
            })?;
        let top_unit = Uuid::parse_str(top.trim()).map_err(|_| ConfigError::Invalid {
            key: "os2sync.top_unit_uuid".into(),
            reason: format!("{top:?} is not a uuid"),
        })?;
        let api_url = s.os2sync.api_url.trim().trim_end_matches('/').to_string();
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                key: "os2sync.api_url".into(),
                reason: format!("{api_url:?} is not an http:// or https:// URL"),
            });
        }
        for (key, list) in [
            (
                "os2sync.phone_scope_classes",
                &s.os2sync.phone_scope_classes,
            ),
            (
                "os2sync.landline_scope_classes",
                &s.os2sync.landline_scope_classes,
            ),
            (
                "os2sync.email_scope_classes",
                &s.os2sync.email_scope_classes,
            ),
            (
                "os2sync.ignored.unit_levels",
                &s.os2sync.ignored_unit_levels,
            ),
            ("os2sync.ignored.unit_types", &s.os2sync.ignored_unit_types),
        ] {
            if let Some(bad) = list.iter().find(|v| v.trim().is_empty()) {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    reason: format!("{bad:?} is empty"),
                });
            }
        }
        Ok(Config {
            cvr: cvr.trim().to_string(),
            api_url,
            api_key: s.os2sync.api_key.clone(),
            verify_tls: s.os2sync.ca_verify,
            top_unit,
            hash_cache: s.os2sync.hash_cache.clone(),
            xfer_cpr: s.os2sync.xfer_cpr,
            autowash: s.os2sync.autowash,
            phone_classes: s.os2sync.phone_scope_classes.clone(),
            landline_classes: s.os2sync.landline_scope_classes.clone(),
            email_classes: s.os2sync.email_scope_classes.clone(),
            ignored_levels: s.os2sync.ignored_unit_levels.clone(),
            ignored_types: s.os2sync.ignored_unit_types.clone(),
            sync_managers: s.os2sync.sync_managers,
            use_contact_for_tasks: s.os2sync.use_contact_for_tasks,
            enable_kle: s.os2sync.enable_kle,
            engagement_address: s.os2sync.employee_engagement_address.clone(),
            uuid_from_it_systems: s.os2sync.uuid_from_it_systems.clone(),
            truncate: s.os2sync.truncate_length.max(1),
            user_key_it_system: s.os2sync.user_key_it_system_name.clone(),
            hierarchy_names: s.os2sync.filter_hierarchy_names.clone(),
            filter_users_by_it_system: s.os2sync.filter_users_by_it_system,
            extension_as_job_function: s.os2sync.use_extension_field_as_job_function,
            templates: Templates::new(&s.os2sync.templates)?,
            hierarchy_wait: std::time::Duration::from_secs(600),
            hierarchy_poll: std::time::Duration::from_secs(5),
        })
    }
}

/// The `os2sync.*` settings, as the upstream exporter names them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Os2syncSettings {
    /// OS2Sync's API (`…/api`).
    #[serde(rename = "os2sync.api_url")]
    pub api_url: String,
    /// OS2Sync's `ApiKey` header, when it has one configured.
    #[serde(rename = "os2sync.api_key")]
    pub api_key: Option<Secret>,
    #[serde(rename = "os2sync.ca_verify_os2sync")]
    pub ca_verify: bool,
    /// Accepted for old settings files; dipex reaches MO through its own backend settings.
    #[serde(rename = "os2sync.ca_verify_os2mo")]
    pub ca_verify_os2mo: bool,
    #[serde(rename = "os2sync.top_unit_uuid")]
    pub top_unit_uuid: Option<String>,
    #[serde(rename = "os2sync.hash_cache")]
    pub hash_cache: PathBuf,
    #[serde(rename = "os2sync.xfer_cpr")]
    pub xfer_cpr: bool,
    #[serde(rename = "os2sync.autowash")]
    pub autowash: bool,
    #[serde(
        rename = "os2sync.phone_scope_classes",
        deserialize_with = "crate::settings::string_list"
    )]
    pub phone_scope_classes: Vec<String>,
    #[serde(
        rename = "os2sync.landline_scope_classes",
        deserialize_with = "crate::settings::string_list"
    )]
    pub landline_scope_classes: Vec<String>,
    #[serde(
        rename = "os2sync.email_scope_classes",
        deserialize_with = "crate::settings::string_list"
    )]
    pub email_scope_classes: Vec<String>,
    #[serde(
        rename = "os2sync.ignored.unit_levels",
        deserialize_with = "crate::settings::string_list"
    )]
    pub ignored_unit_levels: Vec<String>,
    #[serde(
        rename = "os2sync.ignored.unit_types",
        deserialize_with = "crate::settings::string_list"
    )]
    pub ignored_unit_types: Vec<String>,
    /// Jinja templates by field key (`person.name`, `person.user_id`).
    #[serde(rename = "os2sync.templates")]
    pub templates: std::collections::BTreeMap<String, String>,
    #[serde(rename = "os2sync.sync_managers")]
    pub sync_managers: bool,
    #[serde(rename = "os2sync.use_contact_for_tasks")]
    pub use_contact_for_tasks: bool,
    #[serde(rename = "os2sync.enable_kle")]
    pub enable_kle: bool,
    #[serde(
        rename = "os2sync.employee_engagement_address",
        deserialize_with = "crate::settings::string_list"
    )]
    pub employee_engagement_address: Vec<String>,
    #[serde(
        rename = "os2sync.uuid_from_it_systems",
        deserialize_with = "crate::settings::string_list"
    )]
    pub uuid_from_it_systems: Vec<String>,
    #[serde(rename = "os2sync.truncate_length")]
    pub truncate_length: usize,
    #[serde(rename = "os2sync.user_key_it_system_name")]
    pub user_key_it_system_name: String,
    #[serde(
        rename = "os2sync.filter_hierarchy_names",
        deserialize_with = "crate::settings::string_list"
    )]
    pub filter_hierarchy_names: Vec<String>,
    #[serde(rename = "os2sync.filter_users_by_it_system")]
    pub filter_users_by_it_system: bool,
    #[serde(rename = "os2sync.use_extension_field_as_job_function")]
    pub use_extension_field_as_job_function: bool,
    /// Accepted for old settings files (the LoRa cache database); dipex reads MO or a mirror.
    #[serde(rename = "os2sync.use_lc_db")]
    pub use_lc_db: bool,
}

impl Default for Os2syncSettings {
    fn default() -> Os2syncSettings {
        Os2syncSettings {
            api_url: "http://localhost:8081/api".into(),
            api_key: None,
            ca_verify: true,
            ca_verify_os2mo: true,
            top_unit_uuid: None,
            hash_cache: PathBuf::from("os2sync_hash_cache"),
            xfer_cpr: false,
            autowash: false,
            phone_scope_classes: Vec::new(),
            landline_scope_classes: Vec::new(),
            email_scope_classes: Vec::new(),
            ignored_unit_levels: Vec::new(),
            ignored_unit_types: Vec::new(),
            templates: std::collections::BTreeMap::new(),
            sync_managers: false,
            use_contact_for_tasks: false,
            enable_kle: false,
            employee_engagement_address: Vec::new(),
            uuid_from_it_systems: Vec::new(),
            truncate_length: 200,
            user_key_it_system_name: "Active Directory".into(),
            filter_hierarchy_names: Vec::new(),
            filter_users_by_it_system: false,
            use_extension_field_as_job_function: false,
            use_lc_db: false,
        }
    }
}
