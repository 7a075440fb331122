//! [`HostResolver`] on hickory-resolver: the "nslookup from the server" behind the
//! redirect-URI policy. It asks DNS only (no hosts file, no search domains), either
//! the configured server (`--dns-server`) or the system's (`/etc/resolv.conf`),
//! with a short timeout so an unreachable DNS server fails a registration in a few
//! seconds, not a minute.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::redirect_uri::{HostResolver, LookupError, RedirectPolicy};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};

use crate::config::ServerConfig;

/// How long one query waits for an answer. With one retry (a lost UDP packet
/// should not refuse a good URI) an unreachable server fails in about 4 s.
pub const TIMEOUT: Duration = Duration::from_secs(2);

pub struct DnsResolver {
    inner: TokioResolver,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up DNS resolution: {0}")]
pub struct DnsSetupError(String);

impl DnsResolver {
    /// Resolves through `server` (UDP, then TCP for truncated answers), or through
    /// the system's configured name servers when `None`.
    pub fn new(server: Option<SocketAddr>) -> Result<Self, DnsSetupError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                Resolver::builder_with_config(ResolverConfig::from_name_servers(vec![ns]), provider)
            }
            None => Resolver::builder(provider).map_err(|e| DnsSetupError(e.to_string()))?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = TIMEOUT;
        opts.attempts = 1; // hickory counts retries: two tries in all
        // DNS only, as nslookup: /etc/hosts says nothing about what browsers reach.
        opts.use_hosts_file = ResolveHosts::Never;
        let inner = builder.build().map_err(|e| DnsSetupError(e.to_string()))?;
        Ok(Self { inner })
    }
}

#[async_trait]
impl HostResolver for DnsResolver {
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        // Fully qualified, so resolv.conf search domains are never appended.
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        match self.inner.lookup_ip(fqdn.as_str()).await {
            Ok(found) => Ok(found.iter().collect()),
            Err(e) if e.is_no_records_found() => Err(LookupError::NoAddress),
            Err(e) => {
                tracing::warn!(host, error = %e, "DNS lookup failed");
                Err(LookupError::Failed(e.to_string()))
            }
        }
    }
}

/// The policy for a `dev` flag and a DNS server (`None`: the system's).
pub fn redirect_policy(
    dev: bool,
    dns_server: Option<SocketAddr>,
) -> Result<RedirectPolicy, DnsSetupError> {
    Ok(RedirectPolicy {
        dev,
        resolver: Arc::new(DnsResolver::new(dns_server)?),
    })
}

/// As [`redirect_policy`], but when DNS cannot be set up (no readable
/// `/etc/resolv.conf`) the server still starts, says so, and refuses redirect URIs
/// with that reason until it is fixed. `serve` checks [`redirect_policy`] first.
pub fn redirect_policy_or_refusing(config: &ServerConfig) -> RedirectPolicy {
    redirect_policy(config.dev, config.dns_server).unwrap_or_else(|e| {
        tracing::error!(error = %e, "redirect URIs cannot be checked; registrations will fail");
        RedirectPolicy {
            dev: config.dev,
            resolver: Arc::new(NoDns(e.to_string())),
        }
    })
}

/// Every lookup fails with the set-up error.
struct NoDns(String);

#[async_trait]
impl HostResolver for NoDns {
    async fn lookup_ip(&self, _host: &str) -> Result<Vec<IpAddr>, LookupError> {
        Err(LookupError::Failed(self.0.clone()))
    }
}
