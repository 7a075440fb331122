//! W3C Trace Context (§3.2): the trace id of a `traceparent` header value, which
//! the server and the gateway take as the request id.

/// The trace id (32 lowercase hex digits) of a valid `traceparent` value:
/// `00-<32 hex>-<16 hex>-<2 hex>`, ids not all zeros, version `ff` refused; a
/// later version may append fields after the flags. Anything else: `None`.
pub fn trace_id(traceparent: &[u8]) -> Option<&[u8]> {
    let v = traceparent;
    let hex = |s: &[u8]| s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let nonzero = |s: &[u8]| s.iter().any(|b| *b != b'0');
    let ok = v.len() >= 55
        && hex(&v[..2])
        && &v[..2] != b"ff"
        && (v.len() == 55 || (&v[..2] != b"00" && v[55] == b'-'))
        && v[2] == b'-'
        && v[35] == b'-'
        && v[52] == b'-'
        && hex(&v[3..35])
        && nonzero(&v[3..35])
        && hex(&v[36..52])
        && nonzero(&v[36..52])
        && hex(&v[53..55]);
    // Sliced only once the length is known (`then_some` would slice first).
    if ok { Some(&v[3..35]) } else { None }
}

#[cfg(test)]
mod tests {
    use super::trace_id;

    #[test]
    fn only_a_well_formed_traceparent_has_a_trace_id() {
        let id: &[u8] = b"4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            trace_id(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some(id)
        );
        assert_eq!(
            trace_id(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later"),
            Some(id)
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
            "",
        ] {
            assert_eq!(trace_id(bad.as_bytes()), None, "{bad}");
        }
    }
}
