//! The redirect-URI policy every admin surface applies when an app is registered
//! (redirect and post-logout URIs alike): absolute `https` URIs without fragment or
//! user info, on a DNS name (no IP literal, no `localhost`, `.local`, `.internal`)
//! that resolves from this server to at least one public address, as the vendor
//! seed promises ("validated with an nslookup"). Name resolution comes in through
//! [`HostResolver`]; this module does no I/O of its own.
//!
//! A development mode also accepts `http(s)://localhost` and `http(s)://127.0.0.1`
//! on any port, without DNS, for local work. Nothing else changes in that mode.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use async_trait::async_trait;

use crate::admin::AdminError;

/// Longest accepted URI, in bytes (browsers and proxies cap URLs near here).
pub const MAX_URI_LEN: usize = 2048;
/// Most URIs per field, which also bounds the DNS lookups one registration makes.
pub const MAX_URIS: usize = 20;

/// Said when a loopback redirect URI is refused outside development mode.
const DEV_HINT: &str = "development mode (`gatehouse --dev serve`, never in production) accepts http://localhost and http://127.0.0.1 for local testing";

/// Why a name has no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// NXDOMAIN, or the name exists without A or AAAA records.
    #[error("no A or AAAA record")]
    NoAddress,
    /// The lookup itself failed (timeout, SERVFAIL, no server reachable).
    #[error("{0}")]
    Failed(String),
}

/// Resolves a host name to its addresses (A and AAAA), as an nslookup from the
/// server would.
#[async_trait]
pub trait HostResolver: Send + Sync {
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, LookupError>;
}

#[derive(Clone)]
pub struct RedirectPolicy {
    /// Also accept `localhost` and `127.0.0.1` URIs (never in production).
    pub dev: bool,
    pub resolver: Arc<dyn HostResolver>,
}

impl std::fmt::Debug for RedirectPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedirectPolicy")
            .field("dev", &self.dev)
            .finish_non_exhaustive()
    }
}

/// What a URI's host turned out to be, once the syntax rules passed.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A development loopback URI (dev mode only): no DNS.
    DevLoopback,
    /// A DNS name (lowercase, without a trailing dot) to resolve.
    Name(String),
}

impl RedirectPolicy {
    /// The URIs, de-duplicated in order, or the first one refused with its reason.
    /// URIs are kept exactly as given: they are compared later as exact strings
    /// (RFC 9700 §4.1.3).
    pub async fn check(
        &self,
        field: &'static str,
        uris: Vec<String>,
    ) -> Result<Vec<String>, AdminError> {
        let refuse = |uri: &str, why: String| AdminError::Invalid {
            field,
            message: format!("`{uri}`: {why}"),
        };
        if uris.len() > MAX_URIS {
            return Err(AdminError::Invalid {
                field,
                message: format!("at most {MAX_URIS} URIs"),
            });
        }
        let mut out: Vec<String> = Vec::new();
        let mut resolved: Vec<String> = Vec::new();
        for uri in uris {
            if out.contains(&uri) {
                continue;
            }
            match syntax(&uri, self.dev).map_err(|why| refuse(&uri, why))? {
                Target::DevLoopback => {}
                Target::Name(host) if resolved.contains(&host) => {}
                Target::Name(host) => {
                    self.resolves_publicly(&host)
                        .await
                        .map_err(|why| refuse(&uri, why))?;
                    resolved.push(host);
                }
            }
            out.push(uri);
        }
        Ok(out)
    }

    /// Where an outbound call to a registered `uri` (a back-channel logout)
    /// may connect, checked again at call time (DNS may have changed since the
    /// URI was registered): `Ok(None)` for a development loopback URI, else the
    /// host's public addresses (the caller connects only to those: a name that
    /// now resolves to a private address is refused, not followed).
    pub async fn outbound_addresses(&self, uri: &str) -> Result<Option<Vec<IpAddr>>, String> {
        match syntax(uri, self.dev)? {
            Target::DevLoopback => Ok(None),
            Target::Name(host) => {
                self.resolves_publicly(&host).await?;
                let addrs = self
                    .resolver
                    .lookup_ip(&host)
                    .await
                    .map_err(|e| e.to_string())?;
                let public: Vec<IpAddr> = addrs.into_iter().filter(|ip| is_public(*ip)).collect();
                if public.is_empty() {
                    return Err(format!("`{host}` has no public address"));
                }
                Ok(Some(public))
            }
        }
    }

    async fn resolves_publicly(&self, host: &str) -> Result<(), String> {
        let addrs = match self.resolver.lookup_ip(host).await {
            Ok(a) if !a.is_empty() => a,
            Ok(_) | Err(LookupError::NoAddress) => {
                return Err(format!(
                    "`{host}` does not resolve in DNS (no A or AAAA record); \
                     the host must be reachable from this server"
                ));
            }
            Err(LookupError::Failed(e)) => {
                return Err(format!(
                    "DNS lookup failed for `{host}` ({e}); try again, or check the DNS server"
                ));
            }
        };
        if addrs.iter().all(|ip| !is_public(*ip)) {
            let mut list = String::new();
            for (i, ip) in addrs.iter().take(4).enumerate() {
                let _ = write!(list, "{}{ip}", if i > 0 { ", " } else { "" });
            }
            return Err(format!(
                "`{host}` resolves only to private, loopback, link-local or reserved addresses ({list})"
            ));
        }
        Ok(())
    }
}

/// The rules that need no DNS.
fn syntax(uri: &str, dev: bool) -> Result<Target, String> {
    if uri.len() > MAX_URI_LEN {
        return Err(format!("must be at most {MAX_URI_LEN} characters"));
    }
    // The URL parser strips these; kept, the stored string would not be the URI
    // it was checked as (matching is by exact string).
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    let parsed = url::Url::parse(uri).map_err(|_| "is not an absolute URI".to_owned())?;
    if parsed.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not contain user info".into());
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => {
            // One trailing dot makes a name absolute; `1.2.3.4..` is no IPv4
            // address to the URL parser, but trimmed it would be looked up as one.
            let d = d.strip_suffix('.').unwrap_or(d);
            if d.split('.').any(str::is_empty) {
                return Err("the host name has an empty label".into());
            }
            Some(d.to_ascii_lowercase())
        }
        Some(url::Host::Ipv4(ip)) => {
            if dev && ip == Ipv4Addr::LOCALHOST && is_web(parsed.scheme()) {
                return Ok(Target::DevLoopback);
            }
            None
        }
        Some(url::Host::Ipv6(_)) => None,
        // Only non-web schemes parse without a host (`https:` requires one).
        None => return Err("must use https".into()),
    };
    if dev && host.as_deref() == Some("localhost") && is_web(parsed.scheme()) {
        return Ok(Target::DevLoopback);
    }
    let loopback = host.as_deref() == Some("localhost")
        || parsed.host() == Some(url::Host::Ipv4(Ipv4Addr::LOCALHOST));
    if parsed.scheme() != "https" {
        return Err(if dev {
            "must use https (http is accepted only for localhost and 127.0.0.1 in development mode)"
                .into()
        } else if loopback {
            format!("must use https; {DEV_HINT}")
        } else {
            "must use https".into()
        });
    }
    let Some(host) = host else {
        return Err("IP addresses are not allowed; use a DNS name".into());
    };
    if host == "localhost" {
        return Err(format!("`localhost` is not allowed; {DEV_HINT}"));
    }
    for suffix in ["localhost", "local", "internal"] {
        if host.ends_with(&format!(".{suffix}")) {
            return Err(format!("`.{suffix}` hosts are not allowed"));
        }
    }
    Ok(Target::Name(host))
}

fn is_web(scheme: &str) -> bool {
    scheme == "http" || scheme == "https"
}

/// Whether a browser could reach the address across the internet. `IpAddr::is_global`
/// is still unstable, so the ranges are ours: besides loopback, private (RFC 1918,
/// ULA), link-local and unspecified, also CGNAT, "this network", broadcast,
/// multicast, benchmarking, documentation and reserved ranges, since a redirect
/// URI whose host points only there cannot be a public web app either.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // 0.0.0.0/8 "this network"
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10 shared (CGNAT)
        || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24 IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // 198.18.0.0/15 benchmarking
        || a >= 240) // 240.0.0.0/4 reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local() // fc00::/7
        || ip.is_unicast_link_local() // fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32 documentation
        || (s[0] == 0x3fff && s[1] < 0x1000) // 3fff::/20 documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // 100::/64 discard-only
        || s[..6] == [0; 6] // ::/96 IPv4-compatible (deprecated, not routed)
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1) // 64:ff9b:1::/48 local NAT64
        || (s[0] == 0x2001 && s[1] < 0x0200) // 2001::/23 IETF protocol assignments (Teredo)
        || s[0] == 0x2002 // 2002::/16 6to4: a tunnel to an embedded IPv4 address
        || s[0] == 0x5f00) // 5f00::/16 segment routing (SRv6) SIDs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers from a fixed table: only for the pure rules here. The policy is
    /// tested against a real DNS server in the server's API tests.
    struct Table(Vec<(&'static str, Result<Vec<IpAddr>, LookupError>)>);

    #[async_trait]
    impl HostResolver for Table {
        async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
            self.0
                .iter()
                .find(|(h, _)| *h == host)
                .map_or(Err(LookupError::NoAddress), |(_, r)| r.clone())
        }
    }

    fn policy(dev: bool) -> RedirectPolicy {
        RedirectPolicy {
            dev,
            resolver: Arc::new(Table(vec![
                ("app.example", Ok(vec!["93.184.215.14".parse().unwrap()])),
                ("ten.example", Ok(vec!["10.1.2.3".parse().unwrap()])),
            ])),
        }
    }

    async fn refusal(dev: bool, uri: &str) -> String {
        match policy(dev).check("redirect_uris", vec![uri.into()]).await {
            Err(AdminError::Invalid { field, message }) => {
                assert_eq!(field, "redirect_uris");
                assert!(message.starts_with(&format!("`{uri}`: ")), "{message}");
                message
            }
            other => panic!("{uri}: expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn syntax_rules_refuse_with_the_reason() {
        let cases = [
            ("/cb", "is not an absolute URI"),
            ("http://app.example/cb", "must use https"),
            ("com.example.app:/cb", "must use https"),
            ("https://app.example/cb#top", "must not contain a fragment"),
            ("https://app.example/cb#", "must not contain a fragment"),
            ("https://me@app.example/cb", "must not contain user info"),
            ("https://me:pw@app.example/cb", "must not contain user info"),
            ("https://localhost/cb", "`localhost` is not allowed"),
            ("https://LOCALHOST./cb", "`localhost` is not allowed"),
            (
                "https://x.localhost/cb",
                "`.localhost` hosts are not allowed",
            ),
            ("https://printer.local/cb", "`.local` hosts are not allowed"),
            (
                "https://app.Internal./cb",
                "`.internal` hosts are not allowed",
            ),
            ("https://93.184.215.14/cb", "IP addresses are not allowed"),
            ("https://0x7f.1/cb", "IP addresses are not allowed"),
            (
                "https://[2606:4700::1111]/cb",
                "IP addresses are not allowed",
            ),
            ("https://127.0.0.1/cb", "IP addresses are not allowed"),
        ];
        for (uri, why) in cases {
            let m = refusal(false, uri).await;
            assert!(m.contains(why), "{uri}: {m}");
        }
        let long = format!("https://app.example/{}", "a".repeat(MAX_URI_LEN));
        assert!(refusal(false, &long).await.contains("at most"));
    }

    /// Found by the `redirect_uri` fuzz target: `93.184.215.14..` is a domain to
    /// the URL parser, and trimming its dots looked up an IP literal.
    #[tokio::test]
    async fn hosts_with_empty_labels_are_refused() {
        for uri in [
            "https://93.184.215.14../cb",
            "https://app.example../cb",
            "https://app..example/cb",
        ] {
            assert!(refusal(false, uri).await.contains("empty label"), "{uri}");
        }
        // Also found by it: the URL parser strips leading controls, so this
        // string was stored though it is not the URI that was checked.
        for uri in [
            "\u{2}https://app.example/cb",
            "https://app.example/c b",
            "https://app.example/cb\n",
        ] {
            assert!(
                refusal(false, uri).await.contains("control characters"),
                "{uri:?}"
            );
        }
    }

    #[tokio::test]
    async fn dns_answers_decide_the_rest() {
        assert!(
            refusal(false, "https://nowhere.example/cb")
                .await
                .contains("`nowhere.example` does not resolve in DNS (no A or AAAA record)")
        );
        assert!(refusal(false, "https://ten.example/cb").await.contains(
            "resolves only to private, loopback, link-local or reserved addresses (10.1.2.3)"
        ));
        let ok = policy(false)
            .check(
                "redirect_uris",
                vec![
                    "https://app.example/cb".into(),
                    "https://APP.example./other?x=1".into(),
                    "https://app.example/cb".into(),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            ok,
            ["https://app.example/cb", "https://APP.example./other?x=1"]
        );
    }

    #[tokio::test]
    async fn dev_mode_allows_only_local_loopback_hosts() {
        for uri in [
            "http://localhost:3000/cb",
            "http://127.0.0.1:8765/cb",
            "http://localhost/cb",
            "https://localhost:8443/cb",
        ] {
            let ok = policy(true).check("redirect_uris", vec![uri.into()]).await;
            assert_eq!(ok.unwrap(), [uri]);
        }
        assert!(
            refusal(true, "http://app.example/cb")
                .await
                .contains("must use https")
        );
        assert!(
            refusal(true, "http://127.0.0.2/cb")
                .await
                .contains("must use https")
        );
        assert!(
            refusal(true, "http://x.localhost/cb")
                .await
                .contains("must use https")
        );
        assert!(
            refusal(true, "https://[::1]/cb")
                .await
                .contains("IP addresses")
        );
        assert!(
            refusal(true, "http://localhost/cb#f")
                .await
                .contains("fragment")
        );
        assert!(
            refusal(false, "http://localhost:3000/cb")
                .await
                .contains("must use https")
        );
    }

    #[tokio::test]
    async fn a_loopback_refusal_outside_dev_mode_names_dev_mode() {
        for uri in [
            "http://localhost:3000/cb",
            "http://127.0.0.1:8765/cb",
            "https://localhost/cb",
        ] {
            let why = refusal(false, uri).await;
            assert!(
                why.contains("--dev") && why.contains("local testing"),
                "{uri}: {why}"
            );
        }
        assert!(
            !refusal(false, "http://app.example/cb")
                .await
                .contains("--dev")
        );
    }

    #[test]
    fn address_classes() {
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:93.184.215.14",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// Found by the `redirect_uri` fuzz target (checked against std's
    /// `Ipv6Addr::is_global`): these IPv6 ranges are not globally reachable.
    #[test]
    fn special_purpose_ipv6_ranges_are_not_public() {
        for ip in [
            "2002:a00:1::1",
            "2002:5db8:d70e::1",
            "2001::1",
            "2001:1ff::1",
            "64:ff9b:1::a00:1",
            "3fff::1",
            "::7f00:1",
            "::5db8:d70e",
            "5f00:ff11::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["64:ff9b::5db8:d70e", "2001:200::1", "2003::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn too_many_uris() {
        let uris = (0..=MAX_URIS)
            .map(|i| format!("https://app.example/{i}"))
            .collect();
        assert!(policy(false).check("redirect_uris", uris).await.is_err());
    }
}
