//! One module per grant type (fosite's shape). Each decides what may be issued and
//! returns an [`crate::token::AccessTokenPlan`]; minting and persistence happen after.
//! [`scopes`] holds the scope and audience rules the grants share.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
pub mod scopes;
