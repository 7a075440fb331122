//! The token endpoint (RFC 6749 §3.2) as one domain call: the client is already
//! authenticated, the request parsed into a [`TokenRequest`]; an exhaustive
//! `match` hands it to its grant (kanidm's `check_oauth2_token_exchange`). A new
//! grant is a new variant, here and in [`crate::request`], and its own module.

use crate::context::ClientContext;
use crate::grant::authorization_code::{self, CodeGrantStore};
use crate::grant::client_credentials;
use crate::grant::device_code::{self, DeviceGrantStore};
use crate::grant::refresh_token::{self, RefreshGrantStore};
use crate::grant::token_exchange::{self, SubjectTokens};
use crate::request::TokenRequest;

pub use crate::grant::issuer::{Issuer, Policy, TokenError, TokenSet};

/// Every store port the grants of this endpoint touch.
pub trait TokenEndpointStore: CodeGrantStore + RefreshGrantStore + DeviceGrantStore {}
impl<T: CodeGrantStore + RefreshGrantStore + DeviceGrantStore + ?Sized> TokenEndpointStore for T {}

/// Answers a token request of `client`. `tokens` reads the tokens a token
/// exchange presents (introspection's liveness rule).
pub async fn handle<S: TokenEndpointStore + ?Sized>(
    request: &TokenRequest,
    client: &ClientContext,
    issuer: &Issuer<'_, S>,
    tokens: &dyn SubjectTokens,
) -> Result<TokenSet, TokenError> {
    match request {
        TokenRequest::ClientCredentials(r) => client_credentials::handle(r, client, issuer).await,
        TokenRequest::AuthorizationCode(r) => authorization_code::handle(r, client, issuer).await,
        TokenRequest::RefreshToken(r) => refresh_token::handle(r, client, issuer).await,
        TokenRequest::TokenExchange(r) => token_exchange::handle(r, client, issuer, tokens).await,
        TokenRequest::DeviceCode(r) => device_code::handle(r, client, issuer).await,
    }
}
