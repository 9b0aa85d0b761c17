//! Test support for dipex's storage sources, on loopback:
//!
//! * [`gcs::GcsServer`]: a Google Cloud Storage JSON API server with its OAuth 2.0 token
//!   endpoint (verifies the RS256 JWT of a service-account key) and a GCE-style metadata server,
//!   enforcing the real protocol's rules (bearer tokens, percent-encoded object names,
//!   `nextPageToken` pagination, GCS's JSON errors);
//! * [`samba::Samba`]: Debian's `smbd` with its own configuration and user database in a
//!   temporary directory, sharing one folder (needs root and the `samba` package; tests skip
//!   without them).
//!
//! Synthetic data only. The service-account key in `src/test-service-account-key.pem` was
//! generated for these tests and grants nothing anywhere.

pub mod gcs;
pub mod samba;
