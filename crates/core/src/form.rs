//! Strict `application/x-www-form-urlencoded` parsing for OAuth endpoints.
//!
//! Unlike lenient parsers this refuses what RFC 6749 forbids instead of guessing:
//! invalid UTF-8 (§B), repeated parameters (§3.1, §3.2), and unbounded input.
//! Empty values are treated as omitted (§3.1).

use std::collections::BTreeMap;

use crate::error::OAuthError;

/// Limits on a form; the body size itself is bounded by the HTTP layer.
pub const MAX_PARAMS: usize = 64;
pub const MAX_VALUE_LEN: usize = 8 * 1024;

/// Parameters that RFC 8707 allows to repeat.
const MULTI_VALUED: &[&str] = &["resource"];

#[derive(Debug, Default, Clone)]
pub struct Form {
    single: BTreeMap<String, String>,
    multi: BTreeMap<String, Vec<String>>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut form = Form::default();
        let mut count = 0usize;
        for pair in pairs(body).filter(|p| !p.is_empty()) {
            count += 1;
            if count > MAX_PARAMS {
                return Err(OAuthError::invalid_request(format!(
                    "too many parameters (at most {MAX_PARAMS})"
                )));
            }
            let (k, v) = match memchr::memchr(b'=', pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let key = decode(k)?;
            let value = decode(v)?;
            if value.len() > MAX_VALUE_LEN {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{}` is longer than {MAX_VALUE_LEN} bytes",
                    printable(&key)
                )));
            }
            if value.is_empty() {
                continue;
            }
            form.insert(key, value)?;
        }
        Ok(form)
    }

    fn insert(&mut self, key: String, value: String) -> Result<(), OAuthError> {
        if MULTI_VALUED.contains(&key.as_str()) {
            self.multi.entry(key).or_default().push(value);
            return Ok(());
        }
        if self.single.contains_key(&key) {
            return Err(OAuthError::invalid_request(format!(
                "parameter `{}` is repeated",
                printable(&key)
            )));
        }
        self.single.insert(key, value);
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.single.get(key).map(String::as_str)
    }

    pub fn get_all(&self, key: &str) -> &[String] {
        self.multi.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every parameter once, in a fixed order (names sorted; a repeatable one's
    /// values in request order): what a re-encoding of this form must carry.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let single = self.single.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let multi = self
            .multi
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.as_str(), v.as_str())));
        single.chain(multi)
    }

    pub fn require(&self, key: &'static str) -> Result<&str, OAuthError> {
        self.get(key)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter `{key}`")))
    }
}

/// The `&`-separated parts of a body, found a word at a time (`memchr`): a
/// byte-at-a-time split was a tenth of a JWT introspection's instructions.
fn pairs(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'&', body)
        .chain(std::iter::once(body.len()))
        .map(move |end| {
            let pair = &body[start..end];
            start = end + 1;
            pair
        })
}

/// Decodes one form component: `+` is a space, then percent-decoding, then strict UTF-8.
pub fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let not_utf8 = |_| OAuthError::invalid_request("the form body is not valid UTF-8");
    // Most components (grant types, tokens, ids) need no decoding: one copy.
    if memchr::memchr2(b'+', b'%', raw).is_none() {
        return std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(not_utf8);
    }
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    String::from_utf8(bytes).map_err(|e| not_utf8(e.utf8_error()))
}

/// Parameter names are echoed in errors; keep them short and free of control characters.
fn printable(key: &str) -> String {
    key.chars().filter(|c| !c.is_control()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let f = Form::parse(b"scope=a+b%3Ac&x=%C3%A9").unwrap();
        assert_eq!(f.get("scope"), Some("a b:c"));
        assert_eq!(f.get("x"), Some("é"));
    }

    #[test]
    fn repeated_parameter_is_invalid_request() {
        let e = Form::parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidRequest);
        assert!(e.description.contains("scope"));
    }

    #[test]
    fn resource_may_repeat() {
        let f = Form::parse(b"resource=a&resource=b").unwrap();
        assert_eq!(f.get_all("resource"), ["a", "b"]);
    }

    #[test]
    fn empty_values_are_omitted() {
        let f = Form::parse(b"scope=&scope=x").unwrap();
        assert_eq!(f.get("scope"), Some("x"));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(Form::parse(b"a=%FF").is_err());
        // Raw bytes take the no-escape path; they are checked all the same.
        assert!(Form::parse(b"a=\xFF").is_err());
        assert!(Form::parse(b"\xC3=1").is_err());
    }

    #[test]
    fn pairs_split_on_every_ampersand_edges_included() {
        let split = |b: &'static [u8]| pairs(b).collect::<Vec<_>>();
        assert_eq!(split(b""), [b"" as &[u8]]);
        assert_eq!(split(b"a=1"), [b"a=1" as &[u8]]);
        assert_eq!(split(b"&a=1&&b=2&"), [&b""[..], b"a=1", b"", b"b=2", b""]);
        let f = Form::parse(b"&a=1&&b=c=d&").unwrap();
        assert_eq!((f.get("a"), f.get("b")), (Some("1"), Some("c=d")));
    }

    #[test]
    fn plain_components_are_copied_as_they_are() {
        let f = Form::parse(b"grant_type=client_credentials&token=a.b-c_d~e").unwrap();
        assert_eq!(f.get("grant_type"), Some("client_credentials"));
        assert_eq!(f.get("token"), Some("a.b-c_d~e"));
    }

    #[test]
    fn too_many_parameters_are_refused() {
        let body: Vec<String> = (0..65).map(|i| format!("p{i}=1")).collect();
        assert!(Form::parse(body.join("&").as_bytes()).is_err());
    }
}
