//! File transports: how dipex's integrations move whole files to and from other systems' servers.
//!
//! Each transport is a small, synchronous module with plain functions over a config struct, and a
//! typed error that names the server (`host:port`), the protocol step and the file, and never a
//! password. Today there is [`ftp`]: plain FTP and explicit FTPS (`AUTH TLS`), used by the
//! plan2learn exporter to upload its CSV files and, later, by the Aarhus LOS importer to list and
//! download its files. SFTP, SMB and Google Cloud Storage transports belong here too when the
//! integrations that need them are ported.

pub mod ftp;
pub mod source;
