//! The OPUS import's settings (`integrations.opus.*`), owned by the connector: their keys,
//! types and defaults. Read from the same settings file as every other namespace
//! ([`crate::settings::Settings::load`]), which names a wrong type by its key.

use super::map::Config;
use crate::settings::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The `integrations.opus.*` settings: where the dumps are, the run history, the mapping choices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpusSettings {
    #[serde(rename = "integrations.opus.import.run_db")]
    pub run_db: Option<PathBuf>,
    #[serde(rename = "integrations.opus.import.xml_path")]
    pub xml_path: Option<PathBuf>,
    #[serde(rename = "integrations.opus.unit_user_key")]
    pub unit_user_key: String,
    #[serde(
        rename = "integrations.opus.units.filter_ids",
        deserialize_with = "crate::settings::string_list"
    )]
    pub filter_ids: Vec<String>,
    #[serde(rename = "integrations.opus.skip_employees")]
    pub skip_employees: bool,
    #[serde(rename = "integrations.opus.skip_employee_email")]
    pub skip_employee_email: bool,
    #[serde(rename = "integrations.opus.skip_employee_phone")]
    pub skip_employee_phone: bool,
    #[serde(rename = "integrations.opus.skip_employee_address")]
    pub skip_employee_address: bool,
    /// Engagement type classes (user_keys or uuids), most primary first.
    #[serde(
        rename = "integrations.opus.eng_types_primary_order",
        deserialize_with = "crate::settings::string_list"
    )]
    pub eng_types_primary_order: Vec<String>,
    /// The cpr→uuid mapping CSV; used when the file exists.
    #[serde(rename = "integrations.opus.cpr_uuid_map")]
    pub cpr_uuid_map: PathBuf,
    #[serde(rename = "integrations.opus.gcloud_bucket_name")]
    pub gcloud_bucket_name: Option<String>,
    /// The Google Cloud Storage JSON API endpoint (tests point it at loopback).
    #[serde(rename = "integrations.opus.gcloud_endpoint")]
    pub gcloud_endpoint: String,
    /// The metadata server's token URL, used without `GOOGLE_APPLICATION_CREDENTIALS`.
    #[serde(rename = "integrations.opus.gcloud_metadata_url")]
    pub gcloud_metadata_url: String,
    #[serde(rename = "integrations.opus.smb_host")]
    pub smb_host: Option<String>,
    #[serde(rename = "integrations.opus.smb_user")]
    pub smb_user: Option<String>,
    #[serde(rename = "integrations.opus.smb_password")]
    pub smb_password: Option<Secret>,
}

impl Default for OpusSettings {
    fn default() -> OpusSettings {
        OpusSettings {
            run_db: None,
            xml_path: None,
            unit_user_key: "@id".into(),
            filter_ids: Vec::new(),
            skip_employees: false,
            skip_employee_email: false,
            skip_employee_phone: false,
            skip_employee_address: false,
            eng_types_primary_order: Vec::new(),
            cpr_uuid_map: PathBuf::from("settings/cpr_uuid_map.csv"),
            gcloud_bucket_name: None,
            gcloud_endpoint: crate::transport::gcs::DEFAULT_ENDPOINT.into(),
            gcloud_metadata_url: crate::transport::gcs::DEFAULT_METADATA_URL.into(),
            smb_host: None,
            smb_user: None,
            smb_password: None,
        }
    }
}

/// An OPUS setting that is missing, by its key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("setting municipality.name is required: it seeds the uuid of every OPUS unit")]
    NoMunicipality,
    #[error(
        "setting integrations.opus.import.run_db is required: the SQLite file with the run history"
    )]
    NoRunDb,
}

impl OpusSettings {
    /// The mapping's settings, for the municipality named `municipality` (`municipality.name`).
    pub fn mapping(&self, municipality: Option<&str>) -> Result<Config, ConfigError> {
        let name = municipality.ok_or(ConfigError::NoMunicipality)?;
        Ok(Config {
            unit_user_key: self.unit_user_key.clone(),
            filter_ids: self.filter_ids.clone(),
            skip_employees: self.skip_employees,
            skip_email: self.skip_employee_email,
            skip_phone: self.skip_employee_phone,
            skip_address: self.skip_employee_address,
            primary_order: self.eng_types_primary_order.clone(),
            ..Config::new(name)
        })
    }

    /// The run history database.
    pub fn run_db(&self) -> Result<&std::path::Path, ConfigError> {
        self.run_db.as_deref().ok_or(ConfigError::NoRunDb)
    }
}
