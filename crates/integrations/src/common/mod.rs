//! What more than one connector uses: the clock and identity sources of a run ([`env`]), the
//! upstream uuid derivation ([`uuids`]) and the splitting of Danish address texts
//! ([`address`]). Pure: no file, network, environment or clock access here. No connector
//! imports another connector; what two share lives here (checked by `layering_tests`).

pub mod address;
pub mod env;
pub mod report;
pub mod uuids;
