//! The `dipex` binary's integration tests, one binary: commands end to end (`cli`), the address
//! register (`dar`), and the OPUS dump sources (`opus_sources`).

mod cli;
mod dar;
mod opus_sources;
