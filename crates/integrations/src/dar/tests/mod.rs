//! Tests of the DAR registers against a real loopback HTTP server, a real SQLite file and the
//! CSV fixtures in `tests/fixtures/dar/`.

mod cache;
mod http;
mod offline;
mod server;
