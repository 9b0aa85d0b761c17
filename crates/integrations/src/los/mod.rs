//! The Aarhus LOS import (`specs/los.md`, DESIGN.md rulings 7–9).

pub mod seed;
pub mod state;
pub mod uuids;
