//! Server settings, validated before the server starts.

use std::net::SocketAddr;
use std::time::Duration;

pub use ipnet::IpNet;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// What goes in `iss` and the discovery document, without a trailing slash.
    pub issuer: String,
    /// Largest accepted request body on the OAuth endpoints.
    pub max_body_bytes: usize,
    /// Failed client authentications allowed per client id before 429…
    pub failures_per_client: u32,
    /// …and per source address.
    pub failures_per_address: u32,
    /// The window over which those failures drain.
    pub failure_window: Duration,
    /// How often the change feed is read for cache invalidation.
    pub change_poll: Duration,
    /// Past this without a successful feed read, the client cache is bypassed.
    pub cache_stale_after: Duration,
    /// Authorization code lifetime, seconds (the seeds promise 30 minutes).
    pub code_ttl: i64,
    /// Refresh token lifetime, seconds.
    pub refresh_ttl: i64,
    /// A refresh-token family's absolute lifetime from the authorization, seconds.
    pub refresh_family_max_age: i64,
    /// Signing keys are rotated this long after they became active (seconds;
    /// the next key is published at 90 % of it); `None` rotates only by hand.
    pub key_rotation_period: Option<i64>,
    /// How often housekeeping runs (expired records, apps' last use, the key
    /// rotation schedule).
    pub housekeeping_every: Duration,
    /// Login session lifetime, seconds.
    pub session_ttl: i64,
    /// Failed sign-ins per account *from one address* (that address is then
    /// refused for that account), and per address, within `login_window`. An
    /// account failing from everywhere is only slowed, never locked.
    pub login_failures_per_account: u32,
    pub login_failures_per_address: u32,
    pub login_window: Duration,
    /// Development mode: `localhost` and `127.0.0.1` redirect URIs are accepted.
    pub dev: bool,
    /// The DNS server redirect-URI hosts are looked up on; `None` = the system's.
    pub dns_server: Option<SocketAddr>,
    /// Proxies (load balancers) whose forwarding header names the client; a
    /// request from anywhere else is its TCP peer.
    pub trusted_proxies: Vec<IpNet>,
    /// Which header those proxies write the client into.
    pub forwarded_header: ForwardedHeader,
    /// A request's head must arrive within this of its first byte (a new
    /// connection's first head: of the accept).
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests: longer
    /// than a load balancer's idle timeout (AWS's 60 s) and client pools' (90 s),
    /// so neither reuses a connection this server is closing.
    pub idle_timeout: Duration,
    /// A request's body must arrive within this of its head.
    pub body_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// At shutdown, connections still open after this are dropped.
    pub shutdown_grace: Duration,
    /// Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0).
    pub backchannel: crate::backchannel::BackchannelConfig,
    /// DPoP (RFC 9449): a proof's `iat` must be within this many seconds of now.
    pub dpop_window: i64,
    /// DPoP: the token endpoint demands a server nonce (§8) in every proof.
    pub dpop_nonce: bool,
    /// Where invitation and password-reset e-mail goes; `None`: no mail is
    /// sent (admins hand invitation links on themselves).
    pub mail: Option<crate::mail::Mailer>,
}

/// The header a trusted proxy appends the client's address to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, …` (AWS, GCP, nginx, HAProxy, Envoy).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// A `--trusted-proxies` entry: a CIDR range, or one address.
pub fn parse_proxy(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an address or CIDR range (e.g. 10.0.0.0/8)"))
}

/// See [`ServerConfig::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

impl ServerConfig {
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            max_body_bytes: 64 * 1024,
            failures_per_client: 20,
            failures_per_address: 50,
            failure_window: Duration::from_secs(60),
            change_poll: Duration::from_millis(10),
            cache_stale_after: Duration::from_secs(2),
            code_ttl: 30 * 60,
            refresh_ttl: gatehouse_core::grant::refresh_token::DEFAULT_TTL,
            refresh_family_max_age: gatehouse_core::grant::refresh_token::DEFAULT_FAMILY_MAX_AGE,
            key_rotation_period: Some(90 * 24 * 3600),
            housekeeping_every: Duration::from_secs(60),
            session_ttl: 12 * 3600,
            login_failures_per_account: 10,
            login_failures_per_address: 50,
            login_window: Duration::from_secs(300),
            dev: false,
            dns_server: None,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::default(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(10),
            backchannel: Default::default(),
            dpop_window: gatehouse_core::dpop::DEFAULT_WINDOW_SECS,
            dpop_nonce: false,
            mail: None,
        }
    }

    pub fn policy(&self) -> gatehouse_core::token_endpoint::Policy {
        gatehouse_core::token_endpoint::Policy {
            issuer: self.issuer.clone(),
            code_ttl: self.code_ttl,
            refresh_ttl: self.refresh_ttl,
            refresh_family_max_age: self.refresh_family_max_age,
        }
    }

    /// Cookies carry `Secure` whenever the issuer is served over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}
