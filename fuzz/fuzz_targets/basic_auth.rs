//! The HTTP Basic client-credentials header (RFC 6749 §2.3.1): never panics on
//! any bytes; what it accepts is the form-decoding of the two halves of the
//! base64 text; re-encoding accepted credentials parses back to them; and any
//! id/secret pair, encoded as the RFC says, is read back exactly.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::basic_auth::parse_basic;
use gatehouse_core::form::decode;
use libfuzzer_sys::fuzz_target;

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn header(scheme: &str, id: &str, secret: &str) -> String {
    let creds = format!("{}:{}", encode(id), encode(secret));
    format!("{scheme} {}", STANDARD.encode(creds))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        // Raw header bytes.
        let Ok((id, secret)) = parse_basic(rest) else {
            return;
        };
        assert!(!id.is_empty(), "an empty client id was accepted");
        let text = std::str::from_utf8(rest).expect("accepted bytes are UTF-8");
        let (scheme, b64) = text
            .trim()
            .split_once(' ')
            .expect("accepted without a space");
        assert!(
            scheme.eq_ignore_ascii_case("basic"),
            "scheme {scheme:?} accepted"
        );
        let plain = STANDARD
            .decode(b64.trim())
            .expect("accepted without base64");
        let plain = String::from_utf8(plain).expect("accepted non-UTF-8 credentials");
        let (raw_id, raw_secret) = plain.split_once(':').expect("accepted without `:`");
        assert_eq!(decode(raw_id.as_bytes()).ok().as_deref(), Some(id.as_str()));
        assert_eq!(
            decode(raw_secret.as_bytes()).ok().as_deref(),
            Some(secret.as_str())
        );
        let again = parse_basic(header("Basic", &id, &secret).as_bytes())
            .expect("re-encoded credentials refused");
        assert_eq!(again, (id, secret), "round trip");
    } else {
        // Credentials as a client would encode them (id NUL secret).
        let (id, secret) = match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b""[..]),
        };
        let (Ok(id), Ok(secret)) = (std::str::from_utf8(id), std::str::from_utf8(secret)) else {
            return;
        };
        let scheme = ["Basic", "basic", "BASIC", "bAsIc"][usize::from(mode >> 1) % 4];
        let got = parse_basic(header(scheme, id, secret).as_bytes());
        if id.is_empty() {
            assert!(got.is_err(), "an empty client id was accepted");
        } else {
            let got = got
                .unwrap_or_else(|e| panic!("well-encoded credentials refused: {}", e.description));
            assert_eq!(got, (id.to_owned(), secret.to_owned()));
        }
    }
});
