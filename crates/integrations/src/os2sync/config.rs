//! The OS2Sync exporter's settings (`os2sync.*`, `municipality.cvr`; `OS2SYNC_*` in the
//! environment wins, handled by [`crate::settings`]) checked and ready to use, including the
//! compiled Jinja templates.

use crate::settings::Settings;
use minijinja::{Environment, UndefinedBehavior};
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
            .os2sync_top_unit_uuid
            .as_deref()
            .ok_or(ConfigError::Missing {
                key: "os2sync.top_unit_uuid",
            })?;
        let top_unit = Uuid::parse_str(top.trim()).map_err(|_| ConfigError::Invalid {
            key: "os2sync.top_unit_uuid".into(),
            reason: format!("{top:?} is not a uuid"),
        })?;
        let api_url = s.os2sync_api_url.trim().trim_end_matches('/').to_string();
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                key: "os2sync.api_url".into(),
                reason: format!("{api_url:?} is not an http:// or https:// URL"),
            });
        }
        for (key, list) in [
            (
                "os2sync.phone_scope_classes",
                &s.os2sync_phone_scope_classes,
            ),
            (
                "os2sync.landline_scope_classes",
                &s.os2sync_landline_scope_classes,
            ),
            (
                "os2sync.email_scope_classes",
                &s.os2sync_email_scope_classes,
            ),
            (
                "os2sync.ignored.unit_levels",
                &s.os2sync_ignored_unit_levels,
            ),
            ("os2sync.ignored.unit_types", &s.os2sync_ignored_unit_types),
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
            api_key: s.os2sync_api_key.clone(),
            verify_tls: s.os2sync_ca_verify,
            top_unit,
            hash_cache: s.os2sync_hash_cache.clone(),
            xfer_cpr: s.os2sync_xfer_cpr,
            autowash: s.os2sync_autowash,
            phone_classes: s.os2sync_phone_scope_classes.clone(),
            landline_classes: s.os2sync_landline_scope_classes.clone(),
            email_classes: s.os2sync_email_scope_classes.clone(),
            ignored_levels: s.os2sync_ignored_unit_levels.clone(),
            ignored_types: s.os2sync_ignored_unit_types.clone(),
            sync_managers: s.os2sync_sync_managers,
            use_contact_for_tasks: s.os2sync_use_contact_for_tasks,
            enable_kle: s.os2sync_enable_kle,
            engagement_address: s.os2sync_employee_engagement_address.clone(),
            uuid_from_it_systems: s.os2sync_uuid_from_it_systems.clone(),
            truncate: s.os2sync_truncate_length.max(1),
            user_key_it_system: s.os2sync_user_key_it_system_name.clone(),
            hierarchy_names: s.os2sync_filter_hierarchy_names.clone(),
            filter_users_by_it_system: s.os2sync_filter_users_by_it_system,
            extension_as_job_function: s.os2sync_use_extension_field_as_job_function,
            templates: Templates::new(&s.os2sync_templates)?,
            hierarchy_wait: std::time::Duration::from_secs(600),
            hierarchy_poll: std::time::Duration::from_secs(5),
        })
    }
}
