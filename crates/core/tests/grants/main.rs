//! The grant units' own tests: `token_endpoint::handle` for each grant against a
//! fresh SQLite `:memory:` store and a fixed clock, asserting the answer, the
//! store's state afterwards and the minted tokens' verified claims.
//!
//! An integration test (not `#[cfg(test)]` in src) because the SQL store depends
//! on core: a dev-dependency from inside core's own unit tests would compile a
//! second copy of core's types.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod authorization_code;
mod client_credentials;
mod par;
mod refresh_token;
mod world;
