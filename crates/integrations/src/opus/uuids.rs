//! OPUS's deterministic uuids: the upstream derivation under the municipality's name
//! ([`crate::common::uuids`]).

pub use crate::common::uuids::DerivedUuids as OpusUuids;
