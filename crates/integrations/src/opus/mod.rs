//! OPUS Løn: payroll XML dumps (`ZLPE<timestamp>_delta.xml`) into MO. `parse` reads a dump,
//! `diff` finds what changed since the last imported one, `map` turns that into facts (pure),
//! `run` drives it all against a backend and the state database.

pub mod config;
pub mod cprmap;
pub mod diff;
pub mod files;
pub mod map;
pub mod parse;
pub mod primary;
pub mod run;
pub mod state;
pub mod uuids;
