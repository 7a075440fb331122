//! The authorization code grant's token request (RFC 6749 §4.1.3, RFC 7636 §4.6).
//! The code was redeemed (marked used) by the store before these checks, so a
//! failed check still burns it: a code is good for one attempt.

use crate::clock::UnixTime;
use crate::error::OAuthError;
use crate::model::{App, AuthCode, Grant, GrantType};
use crate::pkce;

pub struct CodeExchange<'a> {
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

pub fn check(
    code: &AuthCode,
    grant: &Grant,
    app: &App,
    req: &CodeExchange<'_>,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if code.client_id != app.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if !app.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client(
            "this app is not allowed the authorization code grant",
        ));
    }
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the authorization was revoked"));
    }
    // The code is bound to the app's credential generation when it was issued:
    // a secret rotation or a disable/enable since then ends it, as it ends tokens.
    if grant.generation != app.generation {
        return Err(OAuthError::invalid_grant(
            "the app's credentials changed since this code was issued",
        ));
    }
    // §4.1.3: required and identical when the authorization request included it.
    if !code.redirect_uri.is_empty() && req.redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "`redirect_uri` must be the one sent in the authorization request",
        ));
    }
    match (&code.code_challenge, req.code_verifier) {
        (Some(challenge), Some(v)) if pkce::verify(v, challenge) => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::invalid_grant(
            "the code_verifier does not match the code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "the authorization used PKCE: `code_verifier` is required",
        )),
        // RFC 9700 §4.8.2: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "no code_challenge was sent for this code",
        )),
        (None, None) => Ok(()),
    }
}
