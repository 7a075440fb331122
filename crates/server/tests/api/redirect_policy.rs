//! The redirect-URI policy as the server builds it: the real hickory resolver asking
//! a real DNS server on a loopback port (gatehouse-testdns), with names that resolve
//! to public, private and loopback addresses, and names that do not exist.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use gatehouse_core::admin::{self, AdminError, NewApp};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::Actor;
use gatehouse_core::model::GrantType;
use gatehouse_core::redirect_uri::RedirectPolicy;
use gatehouse_server::dns::redirect_policy;
use gatehouse_testdns::{SilentDns, TestDns};

use crate::helpers::TestApp;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn dns() -> TestDns {
    TestDns::start(&[
        ("public.test.example", ip("93.184.215.14")),
        ("v6.test.example", ip("2606:4700::1111")),
        ("ten.test.example", ip("10.1.2.3")),
        ("home.test.example", ip("192.168.1.5")),
        ("loop.test.example", ip("127.0.0.1")),
        ("loop6.test.example", ip("::1")),
        ("linklocal6.test.example", ip("fe80::1")),
        ("metadata.test.example", ip("169.254.169.254")),
        ("private2.test.example", ip("10.0.0.1")),
        ("private2.test.example", ip("fd00::1")),
        ("mixed.test.example", ip("10.0.0.1")),
        ("mixed.test.example", ip("93.184.215.14")),
    ])
    .await
}

fn policy(dns: std::net::SocketAddr, dev: bool) -> RedirectPolicy {
    redirect_policy(dev, Some(dns)).unwrap()
}

/// The refusal message for `uri`, asserting it names the field and the URI.
async fn refused(p: &RedirectPolicy, uri: &str) -> String {
    match p.check("redirect_uris", vec![uri.into()]).await {
        Err(AdminError::Invalid { field, message }) => {
            assert_eq!(field, "redirect_uris");
            assert!(message.starts_with(&format!("`{uri}`: ")), "{message}");
            message
        }
        other => panic!("{uri}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn hosts_resolving_to_a_public_address_are_accepted() {
    let dns = dns().await;
    let p = policy(dns.addr(), false);
    for uri in [
        "https://public.test.example/callback",
        "https://v6.test.example/cb?x=1",
        "https://mixed.test.example/cb",
        "https://PUBLIC.test.example./cb",
    ] {
        let ok = p.check("redirect_uris", vec![uri.into()]).await;
        assert_eq!(ok.unwrap(), [uri], "{uri}");
    }
}

#[tokio::test]
async fn hosts_resolving_only_to_private_or_loopback_addresses_are_refused() {
    let dns = dns().await;
    let p = policy(dns.addr(), false);
    for (host, addrs) in [
        ("ten.test.example", "10.1.2.3"),
        ("home.test.example", "192.168.1.5"),
        ("loop.test.example", "127.0.0.1"),
        ("loop6.test.example", "::1"),
        ("linklocal6.test.example", "fe80::1"),
        ("metadata.test.example", "169.254.169.254"),
    ] {
        let m = refused(&p, &format!("https://{host}/cb")).await;
        assert!(
            m.contains(&format!(
                "`{host}` resolves only to private, loopback, link-local or reserved addresses ({addrs})"
            )),
            "{m}"
        );
    }
    // Every address counts: an IPv4 and an IPv6 answer, both private.
    let m = refused(&p, "https://private2.test.example/cb").await;
    assert!(m.contains("10.0.0.1") && m.contains("fd00::1"), "{m}");
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_refused() {
    let dns = dns().await;
    let p = policy(dns.addr(), false);
    let m = refused(&p, "https://nowhere.test.example/cb").await;
    assert!(
        m.contains("`nowhere.test.example` does not resolve in DNS (no A or AAAA record)"),
        "{m}"
    );
}

#[tokio::test]
async fn a_dns_server_that_does_not_answer_fails_quickly_and_clearly() {
    let silent = SilentDns::start();
    let p = policy(silent.addr(), false);
    let started = Instant::now();
    let m = refused(&p, "https://public.test.example/cb").await;
    let took = started.elapsed();
    assert!(
        m.contains("DNS lookup failed for `public.test.example`"),
        "{m}"
    );
    // Two tries of `dns::TIMEOUT` (2 s), not the resolver's default 2 × 5 s.
    assert!(took < Duration::from_secs(6), "took {took:?}");
    eprintln!("unanswered DNS refused in {took:?}");
}

#[tokio::test]
async fn syntax_rules_refuse_before_any_lookup() {
    // A DNS server that never answers: a lookup would fail with "DNS lookup failed"
    // after the timeout, so each reason below proves no lookup was made.
    let silent = SilentDns::start();
    let p = policy(silent.addr(), false);
    let started = Instant::now();
    for (uri, why) in [
        ("https://app.local/cb", "`.local` hosts are not allowed"),
        (
            "https://app.internal/cb",
            "`.internal` hosts are not allowed",
        ),
        ("https://localhost/cb", "`localhost` is not allowed"),
        (
            "https://x.localhost/cb",
            "`.localhost` hosts are not allowed",
        ),
        (
            "https://93.184.215.14/cb",
            "IP addresses are not allowed; use a DNS name",
        ),
        (
            "https://[2606:4700::1111]/cb",
            "IP addresses are not allowed; use a DNS name",
        ),
        ("http://public.test.example/cb", "must use https"),
        (
            "https://public.test.example/cb#frag",
            "must not contain a fragment",
        ),
        (
            "https://user@public.test.example/cb",
            "must not contain user info",
        ),
        ("cb", "is not an absolute URI"),
    ] {
        let m = refused(&p, uri).await;
        assert!(m.contains(why), "{uri}: {m}");
    }
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn dev_mode_allows_local_loopback_callbacks_only() {
    let dns = dns().await;
    let dev = policy(dns.addr(), true);
    for uri in ["http://localhost:3000/cb", "http://127.0.0.1:8765/cb"] {
        assert_eq!(
            dev.check("redirect_uris", vec![uri.into()]).await.unwrap(),
            [uri]
        );
    }
    assert!(
        refused(&dev, "http://example.com/cb")
            .await
            .contains("must use https")
    );
    assert!(
        refused(&dev, "https://ten.test.example/cb")
            .await
            .contains("resolves only to")
    );
    let prod = policy(dns.addr(), false);
    for uri in ["http://localhost:3000/cb", "http://127.0.0.1:8765/cb"] {
        refused(&prod, uri).await;
    }
}

#[tokio::test]
async fn registration_checks_post_logout_uris_with_the_same_policy() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let operator = Actor::operator();
    let acme = app.org("acme-studio").await;
    let register = |post_logout: &'static str| {
        admin::register_app(
            app.s(),
            SystemClock.now(),
            &app.policy,
            &operator,
            NewApp {
                org: &acme,
                name: "Studio sync",
                description: None,
                grant: GrantType::AuthorizationCode,
                on_behalf_of: None,
                redirect_uris: vec!["https://sync.acme.test/callback".into()],
                post_logout_redirect_uris: vec![post_logout.into()],
                scopes: "cfgateway",
                default_scopes: None,
                audience: None,
                exchange_audiences: vec![],
            },
        )
    };
    match register("https://gone.acme.test/bye").await {
        Err(AdminError::Invalid { field, message }) => {
            assert_eq!(field, "post_logout_redirect_uris");
            assert!(message.contains("does not resolve in DNS"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let (web, _) = register("https://sync.acme.test/bye").await.unwrap();
    assert_eq!(
        web.post_logout_redirect_uris,
        ["https://sync.acme.test/bye"]
    );
}
