//! OPUS Løn: payroll XML dumps (`ZLPE<timestamp>_delta.xml`) into MO.

pub mod parse;
pub mod synth;
