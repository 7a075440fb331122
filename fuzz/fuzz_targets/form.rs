//! `Form::parse` (OAuth request bodies and authorize queries) against an
//! independent model of its rules: it accepts exactly what the model accepts,
//! with the same parameters; nothing accepted repeats a single-valued name; and
//! re-encoding what it accepted parses back to the same parameters.
#![no_main]

use gatehouse_core::form::{Form, MAX_PARAMS, MAX_VALUE_LEN};
use gatehouse_core::request::TokenRequest;
use libfuzzer_sys::fuzz_target;

/// `+` is a space, `%XX` a byte (a `%` not followed by two hex digits stays), then
/// strict UTF-8 — written apart from the library's own decoder.
fn model_decode(raw: &[u8]) -> Option<String> {
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The parameters the rules say `body` carries, in `Form::pairs` order, or
/// `None` where the body must be refused.
fn model(body: &[u8]) -> Option<Vec<(String, String)>> {
    let pieces: Vec<&[u8]> = body
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .collect();
    if pieces.len() > MAX_PARAMS {
        return None;
    }
    let mut single = std::collections::BTreeMap::new();
    let mut resource = Vec::new();
    for p in pieces {
        let (k, v) = match p.iter().position(|b| *b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &b""[..]),
        };
        let (k, v) = (model_decode(k)?, model_decode(v)?);
        if v.len() > MAX_VALUE_LEN {
            return None;
        }
        if v.is_empty() {
            continue;
        }
        if k == "resource" {
            resource.push((k, v));
        } else if single.insert(k, v).is_some() {
            return None;
        }
    }
    Some(single.into_iter().chain(resource).collect())
}

fn pairs(f: &Form) -> Vec<(String, String)> {
    f.pairs()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fuzz_target!(|body: &[u8]| {
    let parsed = Form::parse(body);
    let expected = model(body);
    let form = match (parsed, expected) {
        (Err(_), None) => return,
        (Ok(f), Some(want)) => {
            assert_eq!(pairs(&f), want, "parameters differ from the model");
            f
        }
        (Ok(f), None) => panic!("accepted what the rules refuse: {:?}", pairs(&f)),
        (Err(e), Some(want)) => panic!(
            "refused ({}) what the rules accept: {want:?}",
            e.description
        ),
    };
    let got = pairs(&form);
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in &got {
        assert!(!v.is_empty(), "an empty value was kept for {k:?}");
        assert!(k == "resource" || seen.insert(k.clone()), "{k:?} repeated");
        if k != "resource" {
            assert_eq!(form.get(k), Some(v.as_str()));
        }
    }
    let reencoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&got)
        .finish();
    let again = Form::parse(reencoded.as_bytes()).unwrap_or_else(|e| {
        panic!(
            "its own re-encoding {reencoded:?} refused: {}",
            e.description
        )
    });
    assert_eq!(pairs(&again), got, "round trip through {reencoded:?}");
    // The token endpoint reads every form; it must answer, not panic.
    let _ = TokenRequest::parse(&form);
});
