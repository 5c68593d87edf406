//! Who may do what: bearer tokens, roles and the access policy.
//!
//! - [`tokens`]: API keys, created and revoked with `fieldtrail token …`, stored as SHA-256.
//! - [`policy`]: the role table as a pure function (unit-tested).
//! - [`middleware`]: the axum layer that authenticates every request but `/healthz` (401) and
//!   applies the policy to the route (403, nothing changed).

pub mod cli;
pub mod middleware;
pub mod policy;
pub mod tokens;

pub use policy::{Access, Principal, Role};
