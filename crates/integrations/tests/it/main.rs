//! End-to-end tests of dipex's integrations: real files, the real embedded store (SQLite), the
//! real state database, address registers on real files or loopback servers, the FTP/FTPS
//! transport against in-process servers, the SFTP transport against OpenSSH on loopback, the SMB
//! transport against Samba on loopback, and the GCS transport against a loopback GCS JSON API.

mod ad;
mod gcs;
mod los;
mod los_import;
mod opus;
mod os2mo;
mod os2mo_peer_write;
mod os2sync;
mod plan2learn;
mod sftp;
mod smb;
mod transport;

/// A loopback port nobody listens on right now, for the daemons the tests start.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
