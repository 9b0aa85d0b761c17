//! The backend crate's integration tests, one binary: the suite every backend passes
//! (`backend`), the GraphQL contract with a real OS2mo's schema (`contract`), and the embedded
//! store against real SQLite (`store`).

mod backend;
mod contract;
mod store;
