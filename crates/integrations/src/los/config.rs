//! The Aarhus LOS import's settings (`integrations.aarhus_los.*`), owned by the connector:
//! their keys, types and defaults. Read from the same settings file as every other namespace
//! ([`crate::settings::Settings::load`]), which names a wrong type by its key.

use crate::settings::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The `integrations.aarhus_los.*` settings: where the files are (folder, FTP/FTPS, SFTP), the state file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LosSettings {
    /// Aarhus LOS: the FTP/SFTP server's host name (not a URL).
    #[serde(rename = "integrations.aarhus_los.ftp_url")]
    pub ftp_url: Option<String>,
    /// The SFTP port (plain FTP always uses 21).
    #[serde(rename = "integrations.aarhus_los.ftp_port")]
    pub ftp_port: u16,
    #[serde(rename = "integrations.aarhus_los.ftp_user")]
    pub ftp_user: Option<String>,
    #[serde(rename = "integrations.aarhus_los.ftp_pass")]
    pub ftp_pass: Option<Secret>,
    /// A private key: SFTP is used when set.
    #[serde(rename = "integrations.aarhus_los.ftp_ssh_key_path")]
    pub ssh_key_path: Option<PathBuf>,
    #[serde(rename = "integrations.aarhus_los.ftp_ssh_key_pass")]
    pub ssh_key_pass: Option<Secret>,
    /// The SFTP server's host keys (OpenSSH known_hosts); checked unless `ftp_insecure_host_key`.
    #[serde(rename = "integrations.aarhus_los.ftp_known_hosts")]
    pub known_hosts: Option<PathBuf>,
    #[serde(rename = "integrations.aarhus_los.ftp_insecure_host_key")]
    pub insecure_host_key: bool,
    /// Explicit FTPS instead of plain FTP.
    #[serde(rename = "integrations.aarhus_los.ftps")]
    pub ftps: bool,
    /// Verify the FTPS server's certificate (off only for legacy servers), as plan2learn's.
    #[serde(rename = "integrations.aarhus_los.verify_tls")]
    pub verify_tls: bool,
    /// Extra trusted CA certificates (PEM) for the FTPS server, as plan2learn's.
    #[serde(rename = "integrations.aarhus_los.ca_file")]
    pub ca_file: Option<PathBuf>,
    #[serde(rename = "integrations.aarhus_los.ftp_folder")]
    pub ftp_folder: String,
    #[serde(rename = "integrations.aarhus_los.state_file")]
    pub state_file: Option<PathBuf>,
    /// Read the files from this local folder instead of a server.
    #[serde(rename = "integrations.aarhus_los.import_csv_folder")]
    pub csv_folder: Option<PathBuf>,
    #[serde(rename = "integrations.aarhus_los.azid_it_system_uuid")]
    pub azid_it_system: Option<String>,
}

impl Default for LosSettings {
    fn default() -> LosSettings {
        LosSettings {
            ftp_url: None,
            ftp_port: 22,
            ftp_user: None,
            ftp_pass: None,
            ssh_key_path: None,
            ssh_key_pass: None,
            known_hosts: None,
            insecure_host_key: false,
            ftps: false,
            verify_tls: true,
            ca_file: None,
            ftp_folder: "TEST".into(),
            state_file: None,
            csv_folder: None,
            azid_it_system: None,
        }
    }
}
