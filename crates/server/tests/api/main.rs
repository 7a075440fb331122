//! Integration tests: the real server over HTTP on loopback and a real SQLite file,
//! judged by independent clients (the `oauth2` crate, jsonwebtoken through the
//! published JWKS, raw reqwest). File names mirror the routes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod account;
mod admin_api;
mod browser;
mod connect;
mod console;
mod faults;
mod helpers;
mod key_lifecycle;
mod network;
mod own_writes;
mod password;
mod redirect_policy;
mod request_id;
mod schema_attacks;
mod smtp_sink;
mod well_known;
