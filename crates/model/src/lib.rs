//! The pure model of dipex: MO's object kinds as plain Rust types, their validity slices, the
//! change plan a backend applies, and the shared reconcile step that turns desired facts into a
//! minimal plan. Nothing in this crate does I/O, reads the clock or the environment.

pub mod cpr;
pub mod object;
pub mod plan;
pub mod reconcile;
pub mod validity;

pub use cpr::Cpr;
pub use object::*;
pub use plan::{Op, Plan};
pub use reconcile::{Fact, reconcile};
pub use validity::{Date, Validity};
