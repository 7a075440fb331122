//! The redirect-URI policy, with a resolver that answers fuzz-chosen addresses:
//! an accepted URI is https (or, in development mode only, an http(s) URI on
//! `localhost`/`127.0.0.1`, never looked up), without fragment or user info, on
//! a DNS name that is no IP literal, not `localhost`, `.localhost`, `.local` or
//! `.internal`, that was looked up and answered at least one globally reachable
//! address (judged by std's `is_global`, independent of the library's table).
#![no_main]
#![feature(ip)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use gatehouse_core::redirect_uri::{HostResolver, LookupError, RedirectPolicy};
use libfuzzer_sys::fuzz_target;

struct Fake {
    answer: Result<Vec<IpAddr>, LookupError>,
    asked: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl HostResolver for Fake {
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        self.asked.lock().expect("lock").push(host.to_owned());
        self.answer.clone()
    }
}

/// The policy does no I/O of its own and the fake answers at once: one poll.
fn now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the policy waited on something other than the resolver"),
    }
}

fn globally_reachable(ip: IpAddr) -> bool {
    match ip {
        // A mapped address is reached as its IPv4 address.
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_global(),
            None => v6.is_global(),
        },
        IpAddr::V4(v4) => v4.is_global(),
    }
}

fn addresses(data: &[u8], n: usize) -> Option<(Vec<IpAddr>, &[u8])> {
    let mut rest = data;
    let mut out = Vec::new();
    for _ in 0..n {
        let (&kind, r) = rest.split_first()?;
        if kind & 1 == 0 {
            let (a, r) = r.split_first_chunk::<4>()?;
            out.push(IpAddr::V4(Ipv4Addr::from(*a)));
            rest = r;
        } else {
            let (a, r) = r.split_first_chunk::<16>()?;
            out.push(IpAddr::V6(Ipv6Addr::from(*a)));
            rest = r;
        }
    }
    Some((out, rest))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let dev = flags & 1 == 1;
    let Some((addrs, uri)) = addresses(rest, usize::from(flags >> 1 & 3)) else {
        return;
    };
    let uri = String::from_utf8_lossy(uri).into_owned();
    let answer = match flags >> 3 & 3 {
        0 | 1 => Ok(addrs.clone()),
        2 => Err(LookupError::NoAddress),
        _ => Err(LookupError::Failed("timeout".into())),
    };
    let fake = Arc::new(Fake {
        answer,
        asked: Mutex::new(Vec::new()),
    });
    let policy = RedirectPolicy {
        dev,
        resolver: fake.clone(),
    };
    let Ok(out) = now(policy.check("redirect_uris", vec![uri.clone()])) else {
        return;
    };
    assert_eq!(out, [uri.clone()], "accepted URIs are kept exactly");
    let asked = fake.asked.lock().expect("lock").clone();
    assert!(
        !uri.chars().any(|c| c.is_control() || c.is_whitespace()),
        "{uri:?}: the stored string is not the URI the parser checked"
    );
    let u = url::Url::parse(&uri).expect("accepted a URI that does not parse");
    assert!(u.fragment().is_none(), "{uri:?}: fragment accepted");
    assert!(
        u.username().is_empty() && u.password().is_none(),
        "{uri:?}: user info accepted"
    );
    let dev_loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
        _ => false,
    };
    if dev_loopback {
        assert!(
            dev,
            "{uri:?}: a loopback URI accepted outside development mode"
        );
        assert!(matches!(u.scheme(), "http" | "https"), "{uri:?}");
        assert!(asked.is_empty(), "{uri:?}: a development URI was looked up");
        return;
    }
    assert_eq!(u.scheme(), "https", "{uri:?}: not https");
    let Some(url::Host::Domain(d)) = u.host() else {
        panic!("{uri:?}: an IP literal or no host accepted");
    };
    let host = d.trim_end_matches('.').to_ascii_lowercase();
    assert!(
        host.parse::<IpAddr>().is_err(),
        "{uri:?}: the name {host:?} is an IP address"
    );
    assert!(host != "localhost", "{uri:?}");
    for suffix in [".localhost", ".local", ".internal"] {
        assert!(!host.ends_with(suffix), "{uri:?}: a {suffix} host accepted");
    }
    assert_eq!(asked, [host.clone()], "{uri:?}: the name looked up");
    assert!(
        addrs.iter().any(|ip| globally_reachable(*ip)) && flags >> 3 & 3 < 2,
        "{uri:?}: accepted though {host:?} resolved to {addrs:?}, none globally reachable"
    );
});
