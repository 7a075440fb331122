//! One module per grant type (fosite's shape), each owning its whole sequence:
//! validate, decide, persist through the narrow ports it names, mint. They answer
//! [`crate::token_endpoint::handle`]'s exhaustive match. [`issuer`] holds what
//! every grant issues with; [`scopes`] the scope and audience rules they share;
//! [`user_tokens`] the minting the two user grants share; [`token_exchange`]
//! (RFC 8693) trades a person's token for one to another API; [`device_code`]
//! (RFC 8628) lets a device without a browser get a person's tokens.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod issuer;
pub mod refresh_token;
pub mod scopes;
pub mod token_exchange;
pub mod user_tokens;
