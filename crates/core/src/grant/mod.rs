//! One module per grant type (fosite's shape). Each decides what may be issued and
//! returns an [`crate::token::AccessTokenPlan`]; minting and persistence happen after.

pub mod client_credentials;
