//! The plan2learn export's settings (`exporters.plan2learn.*`, `plan2learn.*`), owned by the
//! connector: their keys, types and defaults. Read from the same settings file as every other
//! namespace ([`crate::settings::Settings::load`]), which names a wrong type by its key.

use super::map::Config;
use crate::settings::{Secret, Settings};
use crate::transport::ftp::{FtpConfig, explicit_tls};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

/// The `exporters.plan2learn.*` and `plan2learn.*` settings: the selection and the FTPS upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Plan2learnSettings {
    /// plan2learn: the unit whose tree is exported.
    #[serde(rename = "exporters.plan2learn.root_unit")]
    pub root_unit: Option<String>,
    /// Engagement type classes (uuids or user_keys) whose engagements are exported.
    #[serde(
        rename = "exporters.plan2learn.allowed_engagement_types",
        deserialize_with = "crate::settings::string_list"
    )]
    pub allowed_engagement_types: Vec<String>,
    /// Unit level class names that are left out of organisation.csv.
    #[serde(
        rename = "integrations.SD_Lon.import.too_deep",
        deserialize_with = "crate::settings::string_list"
    )]
    pub too_deep: Vec<String>,
    /// E-mail address type classes (uuids or user_keys), most wanted first.
    #[serde(
        rename = "plan2learn.email.priority",
        deserialize_with = "crate::settings::string_list"
    )]
    pub email_priority: Vec<String>,
    /// Phone address type classes (uuids or user_keys) that count as mobile, most wanted first.
    #[serde(
        rename = "plan2learn.phone.priority",
        deserialize_with = "crate::settings::string_list"
    )]
    pub phone_priority: Vec<String>,
    /// The engagement extension field that overrides the job title (`extension_1`…`extension_10`).
    #[serde(rename = "exporters.plan2learn.job_title_field")]
    pub job_title_field: String,
    /// The FTPS server the five files are shipped to (`host` or `host:port`).
    #[serde(rename = "exporters.plan2learn.host")]
    pub host: Option<String>,
    #[serde(rename = "exporters.plan2learn.port")]
    pub port: u16,
    #[serde(rename = "exporters.plan2learn.user")]
    pub user: Option<String>,
    #[serde(rename = "exporters.plan2learn.password")]
    pub password: Option<Secret>,
    /// Verify the FTPS server's certificate (off only for legacy servers).
    #[serde(rename = "exporters.plan2learn.verify_tls")]
    pub verify_tls: bool,
    /// Extra trusted CA certificates (PEM) for the FTPS server.
    #[serde(rename = "exporters.plan2learn.ca_file")]
    pub ca_file: Option<PathBuf>,
    /// A folder on the FTPS server to upload into (default: where the login lands).
    #[serde(rename = "exporters.plan2learn.remote_dir")]
    pub remote_dir: Option<String>,
}

impl Default for Plan2learnSettings {
    fn default() -> Plan2learnSettings {
        Plan2learnSettings {
            root_unit: None,
            allowed_engagement_types: Vec::new(),
            too_deep: Vec::new(),
            email_priority: Vec::new(),
            phone_priority: Vec::new(),
            job_title_field: "extension_2".into(),
            host: None,
            port: 21,
            user: None,
            password: None,
            verify_tls: true,
            ca_file: None,
            remote_dir: None,
        }
    }
}

/// A setting is missing or wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("setting {key:?} is required for the plan2learn export")]
    Missing { key: &'static str },
    #[error("setting {key:?}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error(
        "shipping needs exporters.plan2learn.host, exporters.plan2learn.user and exporters.plan2learn.password"
    )]
    NoUpload,
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let key = "exporters.plan2learn.root_unit";
        let root = s
            .plan2learn
            .root_unit
            .as_deref()
            .ok_or(ConfigError::Missing { key })?;
        let root_unit = Uuid::parse_str(root.trim()).map_err(|_| ConfigError::Invalid {
            key,
            reason: format!("{root:?} is not a uuid"),
        })?;
        let key = "exporters.plan2learn.job_title_field";
        let field = s.plan2learn.job_title_field.trim();
        let job_title_extension = field
            .strip_prefix("extension_")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| ConfigError::Invalid {
                key,
                reason: format!("{field:?} is not one of extension_1 … extension_10"),
            })?;
        Ok(Config {
            root_unit,
            allowed_engagement_types: s.plan2learn.allowed_engagement_types.clone(),
            too_deep: s.plan2learn.too_deep.clone(),
            email_priority: s.plan2learn.email_priority.clone(),
            phone_priority: s.plan2learn.phone_priority.clone(),
            job_title_extension,
        })
    }
}

impl Plan2learnSettings {
    /// The FTPS upload (`host` may carry the port as `host:port`).
    pub fn upload(&self) -> Result<FtpConfig, ConfigError> {
        let (Some(host), Some(user), Some(password)) = (&self.host, &self.user, &self.password)
        else {
            return Err(ConfigError::NoUpload);
        };
        let (host, port) = match host.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => {
                (h.to_string(), p.parse().expect("checked"))
            }
            _ => (host.clone(), self.port),
        };
        Ok(FtpConfig {
            host,
            port,
            user: user.clone(),
            password: password.expose().to_string(),
            security: explicit_tls(
                "exporters.plan2learn",
                self.verify_tls,
                self.ca_file.clone(),
            ),
            timeout: Duration::from_secs(30),
            dir: self.remote_dir.clone(),
        })
    }
}
