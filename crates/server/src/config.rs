//! Server settings, validated before the server starts.

use std::time::Duration;

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
}

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
        }
    }
}
