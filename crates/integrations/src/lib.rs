//! dipex's integrations: one folder per external system with the same file roles (parse, map,
//! tests), the DAR address register, and settings. Importers are pure functions from parsed input
//! and current MO state to facts; the runners around them do the I/O through the backend trait.

pub mod ad;
pub mod common;
pub mod dar;
pub mod job;
pub mod los;
pub mod opus;
pub mod os2sync;
pub mod plan2learn;
pub mod settings;
pub mod transport;

#[cfg(test)]
mod layering_tests;
