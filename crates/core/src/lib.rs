//! Gatehouse's protocol and domain: requests are parsed into typed commands, grants
//! decide what may be issued, and tokens are minted through the ports in [`ports`].
//! Nothing here does I/O: storage, time and randomness come in through traits or
//! arguments, so every rule can be tested with a fixed clock and no network.

pub mod account;
pub mod admin;
pub mod authorize;
pub mod backchannel;
pub mod basic_auth;
pub mod claims;
pub mod client_assertion;
pub mod clock;
pub mod context;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod feed;
pub mod form;
pub mod grant;
pub mod id_token;
pub mod introspect;
pub mod jose;
pub mod keyring;
pub mod limits;
pub mod mail_link;
pub mod mfa;
pub mod mfa_policy;
pub mod model;
pub mod par;
pub mod passkey;
pub mod password;
pub mod pkce;
pub mod ports;
pub mod redirect_uri;
pub mod request;
pub mod revocation;
pub mod scope;
pub mod secret;
pub mod token;
pub mod token_endpoint;
pub mod trace_context;
pub mod upstream;

pub use error::{ErrorCode, OAuthError};
