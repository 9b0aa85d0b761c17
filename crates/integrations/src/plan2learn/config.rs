//! The plan2learn export's settings (`exporters.plan2learn.*`, `plan2learn.*`), owned by the
//! connector: their keys, types and defaults. Read from the same settings file as every other
//! namespace ([`crate::settings::Settings::load`]), which names a wrong type by its key.

use crate::settings::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
