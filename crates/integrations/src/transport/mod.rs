//! File transports: how dipex's integrations move whole files to and from other systems' servers.
//!
//! Each transport is a small, synchronous module with plain functions over a config struct, and a
//! typed error that names the server (`host:port`), the protocol step and the file, and never a
//! password or passphrase. Today there are:
//!
//! * [`ftp`]: plain FTP and explicit FTPS (`AUTH TLS`), used by the plan2learn exporter to upload
//!   its CSV files and, later, by the Aarhus LOS importer to list and download its files;
//! * [`sftp`]: SFTP over SSH (password, key, or key then password; host keys checked against a
//!   `known_hosts` file), for the Aarhus LOS importer to list and download its files;
//! * [`smb`]: Windows shares through Samba's libsmbclient, loaded at run time (only machines that
//!   read a share need it), for the OPUS importer's dumps;
//! * [`gcs`]: Google Cloud Storage over its JSON API (service-account key or the VM's metadata
//!   server), for the OPUS importer's dumps.
//!
//! All list a directory (or bucket) as [`RemoteFile`]s and stream downloads to a writer;
//! [`source::Source`] puts them and a local folder behind one interface for importers.

pub mod ftp;
pub mod gcs;
pub mod put;
pub mod sftp;
pub mod smb;
pub mod source;

/// One entry of a remote directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: String,
    /// Size in bytes, when the server tells.
    pub size: Option<u64>,
    /// Last modification time in UTC (FTP servers report UTC, SFTP and SMB servers seconds since
    /// the Unix epoch, GCS an RFC 3339 `updated` time), when the server tells.
    pub modified: Option<jiff::Timestamp>,
}
