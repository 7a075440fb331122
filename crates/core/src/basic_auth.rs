//! The HTTP Basic client-credentials header (RFC 6749 §2.3.1): pure parsing, so
//! the HTTP layer and the fuzz targets share exactly one implementation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::OAuthError;
use crate::form::decode;

/// `Basic base64(urlencode(id) ":" urlencode(secret))`: the form-decoded client id
/// (never empty) and secret. Every refusal is `invalid_client`.
pub fn parse_basic(value: &[u8]) -> Result<(String, String), OAuthError> {
    let bad = |why: &'static str| {
        OAuthError::invalid_client(format!("malformed Basic Authorization header: {why}"))
    };
    let text = std::str::from_utf8(value).map_err(|_| bad("not ASCII"))?;
    let (scheme, rest) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("expected `Basic <credentials>`"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad("only the Basic scheme authenticates clients here"));
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .map_err(|_| bad("not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad("not UTF-8"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| bad("missing `:` between id and secret"))?;
    let id = urldecode(id).ok_or_else(|| bad("client id is not valid form encoding"))?;
    let secret =
        urldecode(secret).ok_or_else(|| bad("client secret is not valid form encoding"))?;
    if id.is_empty() {
        return Err(bad("empty client id"));
    }
    Ok((id, secret))
}

fn urldecode(s: &str) -> Option<String> {
    decode(s.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_is_form_decoded() {
        let v = format!("Basic {}", STANDARD.encode("my%3Aid:s%2Bcr+t"));
        assert_eq!(
            parse_basic(v.as_bytes()).unwrap(),
            ("my:id".into(), "s+cr t".into())
        );
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for v in [
            "Bearer x",
            "Basic !!!",
            "Basic",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        ] {
            assert_eq!(
                parse_basic(v.as_bytes()).unwrap_err().code,
                crate::ErrorCode::InvalidClient,
                "{v}"
            );
        }
    }
}
