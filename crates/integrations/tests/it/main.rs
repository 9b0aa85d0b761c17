//! End-to-end tests of dipex's integrations: real files, the real embedded store (SQLite), the
//! real state database, address registers on real files or loopback servers, the FTP/FTPS
//! transport against in-process servers, and the SFTP transport against OpenSSH on loopback.

mod ad;
mod los;
mod los_import;
mod opus;
mod os2mo;
mod os2sync;
mod plan2learn;
mod sftp;
mod transport;
