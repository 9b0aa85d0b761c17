//! The OS2Sync export (`specs/os2sync.md`, DESIGN.md ruling 10): MO's org units and users sent
//! to OS2Sync's REST API, which passes them on to FK Organisation.
//!
//! `config` (settings and templates), `read` (the MO snapshot through the backend), `map` (pure:
//! which units and users, and their payloads), `payload` (the JSON shapes and digests), `api`
//! (the REST client), `cache` (the hash cache), `run` (full export, single objects, check).

pub mod api;
pub mod cache;
pub mod config;
pub mod map;
pub mod payload;
pub mod read;
pub mod run;

pub use config::Config;

#[cfg(test)]
mod tests;
