//! The resource-server side of Gatehouse: what an API needs to trust Gatehouse's
//! access tokens, fast, and to see them end the moment they end.
//!
//! - JWTs are verified locally against the issuer's JWKS (discovered, cached,
//!   refetched on an unknown `kid` at most once a second), with `iss`, `aud`,
//!   `exp`/`nbf` (small leeway), `typ: at+jwt` and an algorithm allow-list.
//! - Reference tokens are introspected with the API's credentials (cached 30 s).
//! - Ended tokens: the validator follows the issuer's revocation feed
//!   (`GET /connect/revocations`, long poll) and refuses a rotated app's, a
//!   deactivated user's, a revoked grant's or a revoked token's JWTs within a
//!   second; if it loses the feed for too long it refuses tokens issued since.
//! - Refusals follow RFC 6750: 401 `invalid_token`, 403 `insufficient_scope`
//!   (a request without a token gets a bare `Bearer realm` challenge).
//! - `gatehouse gateway` matches routes on the canonical request path
//!   ([`path`]) and forwards exactly that path, so no upstream decoding can reach
//!   a route the gateway did not check.
//!
//! Guarding an axum service:
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use gatehouse_gateway::{ApiSecret, Principal, Validator, ValidatorConfig};
//!
//! async fn status(who: Principal) -> String {
//!     format!("hello {} acting for {}", who.client_id, who.subject)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ValidatorConfig::new(
//!     "http://127.0.0.1:8080",
//!     "https://gateway.acme.test",
//!     "api-client-id",
//!     ApiSecret::new(std::env::var("API_SECRET")?),
//! );
//! let validator = Validator::start(config, Duration::from_secs(5)).await?;
//! let app: Router = Router::new()
//!     .route("/v1/products/get-status", get(status))
//!     .layer(validator.layer(&["cfgateway"]));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod demo;
pub mod feed;
pub mod gateway;
pub mod health;
pub mod introspection;
pub mod jwks;
pub mod layer;
pub mod metrics;
pub mod path;
pub mod principal;
pub mod proxy;
pub mod request_id;
pub mod revoked;
pub mod routes;
pub mod validator;
pub mod verify;

pub use config::{ApiSecret, ValidatorConfig};
pub use gateway::{Backend, Gateway};
pub use layer::{Rejection, RequireToken};
pub use principal::Principal;
pub use proxy::Proxy;
pub use routes::{Route, Routes};
pub use validator::{StartError, Validator};
pub use verify::Alg;
