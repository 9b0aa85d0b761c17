//! End-to-end tests of dipex's integrations: real files, the real embedded store (SQLite), the
//! real state database, and address registers on real files or loopback servers.

mod opus;
mod os2mo;
mod plan2learn;
