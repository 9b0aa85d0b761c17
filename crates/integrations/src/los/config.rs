//! The Aarhus LOS import's settings (`integrations.aarhus_los.*`), owned by the connector:
//! their keys, types and defaults. Read from the same settings file as every other namespace
//! ([`crate::settings::Settings::load`]), which names a wrong type by its key.

use crate::settings::Secret;
use crate::transport::ftp::{FtpConfig, FtpSecurity, explicit_tls};
use crate::transport::sftp::{HostKeyCheck, SftpAuth, SftpConfig};
use crate::transport::source::Source;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

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

/// A LOS setting that is missing or wrong, by its key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("setting integrations.aarhus_los.{0} is required")]
    Missing(&'static str),
    #[error(
        "SFTP needs the server's host key: set integrations.aarhus_los.ftp_known_hosts to a known_hosts file \
         (or integrations.aarhus_los.ftp_insecure_host_key to true to skip the check)"
    )]
    NoHostKey,
    #[error("setting integrations.aarhus_los.azid_it_system_uuid: {0:?} is not a uuid")]
    NotAUuid(String),
}

fn required<'a>(v: Option<&'a str>, key: &'static str) -> Result<&'a str, ConfigError> {
    v.filter(|s| !s.trim().is_empty())
        .ok_or(ConfigError::Missing(key))
}

impl LosSettings {
    /// Where the files are: a local folder, SFTP (with a key) or FTP/FTPS.
    pub fn source(&self) -> Result<Source, ConfigError> {
        if let Some(dir) = &self.csv_folder {
            return Ok(Source::Local(dir.clone()));
        }
        let host = required(self.ftp_url.as_deref(), "ftp_url")?.to_string();
        let user = required(self.ftp_user.as_deref(), "ftp_user")?.to_string();
        let password = self.ftp_pass.as_ref().map(|p| p.expose().to_string());
        let dir = Some(self.ftp_folder.clone()).filter(|d| !d.is_empty());
        if let Some(key) = &self.ssh_key_path {
            let passphrase = self.ssh_key_pass.as_ref().map(|p| p.expose().to_string());
            let auth = match password {
                Some(password) => SftpAuth::KeyThenPassword {
                    path: key.clone(),
                    passphrase,
                    password,
                },
                None => SftpAuth::Key {
                    path: key.clone(),
                    passphrase,
                },
            };
            let host_keys = match (&self.known_hosts, self.insecure_host_key) {
                (Some(k), _) => HostKeyCheck::KnownHosts(k.clone()),
                (None, true) => HostKeyCheck::Insecure,
                (None, false) => return Err(ConfigError::NoHostKey),
            };
            let mut cfg = SftpConfig::new(&host, &user, auth, host_keys);
            cfg.port = self.ftp_port;
            cfg.dir = dir;
            return Ok(Source::Sftp(cfg));
        }
        let password = password.ok_or(ConfigError::Missing("ftp_pass"))?;
        let security = if self.ftps {
            explicit_tls(
                "integrations.aarhus_los",
                self.verify_tls,
                self.ca_file.clone(),
            )
        } else {
            FtpSecurity::Plain
        };
        let mut cfg = FtpConfig::new(&host, &user, &password, security);
        cfg.dir = dir;
        cfg.timeout = Duration::from_secs(60);
        Ok(Source::Ftp(cfg))
    }

    /// The state file (the time of the last successful run).
    pub fn state_file(&self) -> Result<PathBuf, ConfigError> {
        self.state_file
            .clone()
            .ok_or(ConfigError::Missing("state_file"))
    }

    /// The IT system of the `AZID` column: `given` (the command line), else the setting, else
    /// the default AZ system.
    pub fn azid_system(&self, given: Option<Uuid>) -> Result<Uuid, ConfigError> {
        match (given, &self.azid_it_system) {
            (Some(u), _) => Ok(u),
            (None, Some(u)) => {
                Uuid::parse_str(u.trim()).map_err(|_| ConfigError::NotAUuid(u.clone()))
            }
            (None, None) => Ok(Uuid::parse_str(super::uuids::AZID_SYSTEM).expect("a uuid")),
        }
    }
}
