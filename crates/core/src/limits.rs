//! Bounds on what arrives before anyone is authenticated, and the one way such
//! values are written to logs. An identifier from a stranger is refused when it is
//! longer than any real one could be, before it is looked up, stored or logged;
//! what is logged is escaped (no forged lines) and cut short.

use std::fmt;

use crate::OAuthError;

/// Client ids (ours are UUIDs; RFC 7591 sets no bound, so leave room).
pub const MAX_CLIENT_ID: usize = 256;
/// An e-mail address (RFC 5321: 64 + 1 + 255).
pub const MAX_EMAIL: usize = 320;
/// `login_hint`: an e-mail address or a subject identifier.
pub const MAX_LOGIN_HINT: usize = 320;
/// `state` and `nonce`: opaque to us, echoed back; clients use tens of bytes.
pub const MAX_STATE: usize = 1024;
pub const MAX_NONCE: usize = 1024;
/// A JWS `kid` (ours are 16 characters).
pub const MAX_KID: usize = 128;

/// How much of an attacker-supplied value a log line shows.
const LOGGED_CHARS: usize = 64;

/// `Err(invalid_request)` naming the parameter when `value` is longer than `max` bytes.
pub fn bounded(name: &str, value: &str, max: usize) -> Result<(), OAuthError> {
    if value.len() > max {
        return Err(OAuthError::invalid_request(format!(
            "`{name}` is longer than {max} bytes"
        )));
    }
    Ok(())
}

/// An untrusted value as a log field: Debug-escaped (a newline is `\n`, never a
/// new line) and at most [`LOGGED_CHARS`] characters, with the full length said.
/// Use as `tracing::info!(client_id = %logged(id), …)`.
pub fn logged(value: &str) -> Logged<'_> {
    Logged(value)
}

pub struct Logged<'a>(&'a str);

impl fmt::Display for Logged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        let head: String = chars.by_ref().take(LOGGED_CHARS).collect();
        write!(f, "{}", head.escape_debug())?;
        if chars.next().is_some() {
            write!(f, "…({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Logged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_values_cannot_break_lines_and_are_cut_short() {
        assert_eq!(logged("a\nb INFO forged").to_string(), "a\\nb INFO forged");
        assert_eq!(logged("\u{1b}[31m").to_string(), "\\u{1b}[31m");
        let long = "x".repeat(300_000);
        let shown = logged(&long).to_string();
        assert_eq!(shown, format!("{}…(300000 bytes)", "x".repeat(64)));
    }

    #[test]
    fn bounded_names_the_parameter() {
        assert!(bounded("state", &"s".repeat(MAX_STATE), MAX_STATE).is_ok());
        let e = bounded("state", &"s".repeat(MAX_STATE + 1), MAX_STATE).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidRequest);
        assert!(e.description.contains("`state`"), "{}", e.description);
    }
}
