//! The plan2learn export (`specs/plan2learn.md`, DESIGN.md ruling 11): five CSV files about the
//! municipality's units, people, engagements, job titles and managers, read from MO through the
//! backend trait and shipped to plan2learn over explicit FTPS.
//!
//! `read` gets the snapshot from MO, `map` (pure) turns it into rows, `address` splits DAR
//! address texts, `write` writes the files atomically; shipping uses [`crate::transport`].

pub mod config;
pub mod map;
pub mod read;
pub mod run;
pub mod write;

pub use map::{Config, Export, Table, export};

/// The five files, in the order they are shipped.
pub const FILES: [&str; 5] = [
    "bruger.csv",
    "organisation.csv",
    "engagement.csv",
    "stillingskode.csv",
    "leder.csv",
];
pub use read::Snapshot;

#[cfg(test)]
mod tests;
