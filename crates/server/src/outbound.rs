//! The HTTP client for calls to addresses that apps registered (`jwks_uri`,
//! back-channel logout URIs): no redirects, no proxy from the environment,
//! bounded time, and names resolved to public addresses only at connect time,
//! so a name that turns private after it was checked is never reached. IP
//! literals do not go through the resolver: callers check URIs against the
//! redirect-URI policy first (at registration and, for queued work, before
//! each call).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::redirect_uri::{HostResolver, RedirectPolicy, is_public};

/// One client per use, built once.
pub fn client(policy: &RedirectPolicy, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .dns_resolver(PublicOnly {
            resolver: policy.resolver.clone(),
            dev: policy.dev,
        })
        .build()
        .unwrap_or_default()
}

/// reqwest's name resolution: the policy's resolver, public addresses only
/// (`localhost` is 127.0.0.1 in development mode).
struct PublicOnly {
    resolver: Arc<dyn HostResolver>,
    dev: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.resolver.clone();
        let dev = self.dev;
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            if dev && host == "localhost" {
                let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    0,
                )));
                return Ok(addrs);
            }
            let found = resolver.lookup_ip(&host).await.map_err(
                |e| -> Box<dyn std::error::Error + Send + Sync> { e.to_string().into() },
            )?;
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|ip| is_public(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if public.is_empty() {
                return Err("the host resolves to no public address".into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}
