//! The request path made canonical once, before any route is matched: the route
//! table judges this path and the upstream receives exactly this path, so an
//! upstream that decodes, folds or resolves it differently cannot be reached on a
//! route the gateway did not check (RFC 3986 §6.2.2).
//!
//! - Percent-encoded bytes that may stand for themselves in a segment (unreserved,
//!   sub-delims except `;`, `:`, `@`) are decoded; every other byte is written
//!   `%XX` with upper-case hex. The canonical path thus contains a literal only
//!   where a route may, and a `%` only for bytes no route contains.
//! - Refused: an encoded `/` (`%2F`), a `\` or `%5C`, NUL, an encoded `;`, a
//!   double-encoded escape (`%2561`), a bad escape, and dot segments (`.`/`..`,
//!   `%2e` included): upstreams resolve those in ways the gateway cannot predict.
//! - Empty segments (`//`) are collapsed; a trailing `/` is kept.
//! - A literal `;` (a path parameter) is kept here; the gateway refuses it unless
//!   the route allows parameters (see [`crate::routes`]).
//! - `ascii_only` (case-insensitive route sets) refuses non-ASCII bytes: Unicode
//!   case folding maps `ſ` to `s` and `K` (Kelvin) to `k`.
//!
//! Cheap when there is nothing to do: a plain path is borrowed, not copied.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with `/`")]
    NotAbsolute,
    #[error("the path has a malformed percent-encoding")]
    BadEscape,
    #[error("the path has an encoded `/`, a `\\` or a NUL")]
    Separator,
    #[error("the path has an encoded `;`")]
    EncodedParameter,
    #[error("the path has a double-encoded character")]
    DoubleEncoded,
    #[error("the path has dot segments")]
    DotSegment,
    #[error(
        "the path has non-ASCII characters, which this gateway's case-insensitive routes refuse"
    )]
    NonAscii,
}

/// May `b` appear literally in a canonical segment (and in a route)?
/// RFC 3986 pchar without `;` and without `%`.
pub fn is_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn escape_at(raw: &[u8], i: usize) -> Option<u8> {
    let (h, l) = (raw.get(i + 1)?, raw.get(i + 2)?);
    Some(hex(*h)? << 4 | hex(*l)?)
}

/// The canonical form of `raw` (the path of an origin-form request target).
pub fn canonical(raw: &str, ascii_only: bool) -> Result<Cow<'_, str>, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if is_plain(bytes) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let (b, encoded) = match bytes[i] {
            b'%' => {
                let b = escape_at(bytes, i).ok_or(PathError::BadEscape)?;
                i += 3;
                (b, true)
            }
            b => {
                i += 1;
                (b, false)
            }
        };
        match b {
            b'/' if !encoded => out.push('/'),
            b'/' | b'\\' | 0 => return Err(PathError::Separator),
            b';' if encoded => return Err(PathError::EncodedParameter),
            b';' => out.push(';'),
            b if is_literal(b) => out.push(char::from(b)),
            b if ascii_only && !b.is_ascii() => return Err(PathError::NonAscii),
            b => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
    // Judged on the output, not the input: `%25%36%31` becomes `%2561` only once
    // `%36%31` is decoded, and an upstream that decodes twice reads `a` there.
    if is_double_encoded(out.as_bytes()) {
        return Err(PathError::DoubleEncoded);
    }
    tidy_segments(&out).map(Cow::Owned)
}

/// An escaped `%` followed by two hex digits: a second decoding makes a byte.
fn is_double_encoded(out: &[u8]) -> bool {
    out.windows(5)
        .any(|w| w[..3].eq_ignore_ascii_case(b"%25") && hex(w[3]).is_some() && hex(w[4]).is_some())
}

/// Nothing to decode, encode, collapse or refuse.
fn is_plain(bytes: &[u8]) -> bool {
    let chars_ok = bytes.iter().all(|b| *b == b'/' || is_literal(*b));
    chars_ok && !bytes.windows(2).any(|w| w == b"//") && !has_dot_segment(bytes)
}

fn has_dot_segment(bytes: &[u8]) -> bool {
    bytes
        .split(|b| *b == b'/')
        .any(|seg| seg == b"." || seg == b"..")
}

/// Collapses empty segments (keeping a trailing `/`) and refuses dot segments.
fn tidy_segments(path: &str) -> Result<String, PathError> {
    if has_dot_segment(path.as_bytes()) {
        return Err(PathError::DotSegment);
    }
    let mut out = String::with_capacity(path.len());
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || path.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

/// The path a servlet container would route on: each segment's `;parameters`
/// removed. `None` when that leaves an empty or dot segment (`/a/..;x/b` is
/// `/a/../b` to Tomcat, and `/;x/` an empty segment it collapses).
pub fn without_parameters(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len());
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (n, seg) in segments.iter().enumerate() {
        let bare = seg.split_once(';').map_or(*seg, |(b, _)| b);
        let trailing_slash = n == last && seg.is_empty();
        if (bare.is_empty() && !trailing_slash) || bare == "." || bare == ".." {
            return None;
        }
        out.push('/');
        out.push_str(bare);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        canonical(raw, false).unwrap().into_owned()
    }

    #[test]
    fn plain_paths_are_borrowed() {
        assert!(matches!(
            canonical("/v1/products/get-status", false),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn unreserved_escapes_are_decoded_others_made_upper_case() {
        assert_eq!(ok("/v1/%61dmin/users"), "/v1/admin/users");
        assert_eq!(ok("/v1/a%3ab"), "/v1/a:b");
        assert_eq!(ok("/v1/a%20b%3f%e2%82%ac"), "/v1/a%20b%3F%E2%82%AC");
        assert_eq!(ok("/v1/a\"b"), "/v1/a%22b");
        assert_eq!(ok("/v1/%25x"), "/v1/%25x");
    }

    #[test]
    fn empty_segments_collapse() {
        assert_eq!(ok("/v1//admin/users"), "/v1/admin/users");
        assert_eq!(ok("//"), "/");
        assert_eq!(ok("/v1/admin//"), "/v1/admin/");
    }

    #[test]
    fn separators_dots_and_double_encoding_are_refused() {
        for (raw, why) in [
            ("/v1/a%2Fb", PathError::Separator),
            ("/v1/a%5cb", PathError::Separator),
            ("/v1/a\\b", PathError::Separator),
            ("/v1/a%00", PathError::Separator),
            ("/v1/a%3bx=1/b", PathError::EncodedParameter),
            ("/v1/%2561dmin", PathError::DoubleEncoded),
            ("/v1/%zz", PathError::BadEscape),
            ("/v1/%6", PathError::BadEscape),
            ("/v1/products/../admin", PathError::DotSegment),
            ("/v1/products/%2e%2E/admin", PathError::DotSegment),
            ("/v1/./admin", PathError::DotSegment),
            ("*", PathError::NotAbsolute),
        ] {
            assert_eq!(canonical(raw, false).err(), Some(why), "{raw}");
        }
        assert_eq!(
            canonical("/v1/%C5%BFecrets", true).err(),
            Some(PathError::NonAscii)
        );
    }

    /// Found by the `gateway_path` fuzz target: decoding `%36%31` after an escaped
    /// `%` made `%2561`, which a double-decoding upstream reads as `a` (here
    /// `/v1/admin/users` checked as `/v1/*`); the output was no fixed point either.
    #[test]
    fn double_encoding_made_by_decoding_is_refused() {
        for raw in [
            "/v1/%25%36%31dmin/users",
            "/v1/%25%43ab",
            "/v1/%256%31",
            "/x/%25a%62",
        ] {
            assert_eq!(
                canonical(raw, false).err(),
                Some(PathError::DoubleEncoded),
                "{raw}"
            );
        }
        assert_eq!(ok("/v1/%25zz/%25"), "/v1/%25zz/%25");
    }

    #[test]
    fn servlet_parameters_are_stripped_or_refused() {
        assert_eq!(ok("/v1/admin;x=1/users"), "/v1/admin;x=1/users");
        assert_eq!(
            without_parameters("/v1/admin;x=1/users").as_deref(),
            Some("/v1/admin/users")
        );
        assert_eq!(without_parameters("/v1/products/..;/admin"), None);
        assert_eq!(without_parameters("/v1/;x/admin"), None);
        assert_eq!(without_parameters("/v1/a/").as_deref(), Some("/v1/a/"));
    }
}
