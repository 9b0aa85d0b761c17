//! End-to-end tests of dipex's integrations: real files, the real embedded store (SQLite), the
//! real state database, address registers on real files or loopback servers, and the FTP/FTPS
//! transport against in-process servers.

mod los;
mod opus;
mod os2mo;
mod os2sync;
mod plan2learn;
mod transport;
