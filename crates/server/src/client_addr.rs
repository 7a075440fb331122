//! [`ClientAddr`]: the address a request comes from, as every throttle, log line
//! and audit record sees it. It is the TCP peer, unless the peer is one of the
//! configured trusted proxies: then it is the right-most hop of the forwarding
//! header that is not itself a trusted proxy (the hops left of it were written
//! by the client and prove nothing).

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};

use crate::config::{ForwardedHeader, IpNet};
use crate::state::AppState;

/// The client's address (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// From a request's parts: the peer recorded by [`crate::serve`] and the headers.
    pub fn of(parts: &Parts, state: &AppState) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Self(resolve(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
            state.config.forwarded_header,
        ))
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self::of(parts, state))
    }
}

/// The client address of a request from `peer` with `headers`.
pub fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardedHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let name = match header {
        ForwardedHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
        ForwardedHeader::Forwarded => HeaderName::from_static("forwarded"),
    };
    // Several header lines are one list, in order (RFC 9110 §5.3).
    let lines: Vec<&str> = headers
        .get_all(&name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let mut client = peer;
    for hop in lines.iter().rev().flat_map(|l| l.rsplit(',')) {
        let node = match header {
            ForwardedHeader::XForwardedFor => Some(hop),
            ForwardedHeader::Forwarded => for_parameter(hop),
        };
        // A hop we cannot read (`unknown`, an obfuscated name, garbage) ends the
        // walk at the trusted proxy that reported it.
        let Some(ip) = node.and_then(parse_node) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// The `for=` value of one RFC 7239 forwarded-element.
fn for_parameter(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`, optionally quoted.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if node.len() > 64 {
        return None;
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    node.parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

/// The unit throttles count an address as: an IPv4 address, or an IPv6 /64 (one
/// subscriber usually holds a whole /64, so single addresses would be free).
pub fn bucket_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| crate::config::parse_proxy(s).unwrap())
            .collect()
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let h = headers("x-forwarded-for", &["203.0.113.7"]);
        let lb = nets(&["10.0.0.0/8"]);
        let xff = ForwardedHeader::XForwardedFor;
        assert_eq!(resolve(ip("10.1.2.3"), &h, &lb, xff), ip("203.0.113.7"));
        assert_eq!(
            resolve(ip("198.51.100.1"), &h, &lb, xff),
            ip("198.51.100.1")
        );
        assert_eq!(resolve(ip("10.1.2.3"), &h, &[], xff), ip("10.1.2.3"));
    }

    #[test]
    fn the_right_most_untrusted_hop_wins_over_what_the_client_wrote() {
        let lb = nets(&["10.0.0.0/8", "192.0.2.1"]);
        let xff = ForwardedHeader::XForwardedFor;
        // The client forged "1.1.1.1"; the LB appended the real address, then an
        // inner trusted proxy appended the LB's.
        let h = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.7", "192.0.2.1"]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &lb, xff), ip("203.0.113.7"));
        let h = headers("x-forwarded-for", &["garbage, 203.0.113.7:4711"]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &lb, xff), ip("203.0.113.7"));
        let h = headers("x-forwarded-for", &["203.0.113.7, unknown"]);
        assert_eq!(resolve(ip("10.0.0.5"), &h, &lb, xff), ip("10.0.0.5"));
        assert_eq!(
            resolve(ip("10.0.0.5"), &HeaderMap::new(), &lb, xff),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn rfc_7239_forwarded_is_read_when_chosen() {
        let lb = nets(&["10.0.0.0/8"]);
        let h = headers(
            "forwarded",
            &[r#"for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https, For=10.0.0.9"#],
        );
        let fwd = ForwardedHeader::Forwarded;
        assert_eq!(
            resolve(ip("10.0.0.5"), &h, &lb, fwd),
            ip("2001:db8:cafe::17")
        );
        // The other header is ignored: a client could have written it.
        let xff = headers("x-forwarded-for", &["203.0.113.7"]);
        assert_eq!(resolve(ip("10.0.0.5"), &xff, &lb, fwd), ip("10.0.0.5"));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(bucket_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(bucket_key(ip("2001:db8:1:2:ffff::9")), "2001:db8:1:2::/64");
        assert_eq!(bucket_key(ip("::ffff:192.0.2.3")), "192.0.2.3");
    }
}
