//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0 §2.5):
//! a background worker on every instance leases due rows of the durable queue
//! (enqueued by the store in the transaction that ended the session), signs a
//! logout token for each (typ `logout+jwt`, never a `nonce`) and POSTs it as
//! `logout_token=…`. The target is checked again at call time (the
//! redirect-URI policy: https on a public name, or the development loopback
//! allowance) and the connection is pinned to the public address that check
//! found, so DNS cannot point a delivery at an internal service. Short
//! timeouts, no redirects, the response body is never read. A failed attempt
//! is retried with exponential backoff; after the last one the outcome is an
//! audit event. This module owns delivery; it must not decide which apps hear
//! of a logout (the store's enqueue does).

use std::sync::{Arc, Weak};
use std::time::Duration;

use gatehouse_core::backchannel::{
    LogoutDelivery, MAX_ATTEMPTS, Outcome, TYP, backoff, logout_token_claims,
};
use gatehouse_core::model::{Actor, ActorKind, AuditEvent, SigningAlg};
use gatehouse_core::secret;
use gatehouse_core::token::Signer;
use tokio::task::JoinSet;

use crate::state::Inner;

/// How the worker runs ([`crate::config::ServerConfig::backchannel`]).
#[derive(Debug, Clone)]
pub struct BackchannelConfig {
    /// The operator's switch (`serve --backchannel-logout`): off, discovery
    /// says `backchannel_logout_supported: false`, nothing is queued or sent,
    /// and registering a logout URI is refused.
    pub enabled: bool,
    /// Whether this instance runs the delivery worker (another instance on the
    /// same database may deliver what this one queues).
    pub deliver: bool,
    /// The first retry waits this many seconds; each next one twice as long.
    pub retry_base: i64,
    /// Attempts before a delivery is given up.
    pub max_attempts: i64,
    /// Connect and whole-request timeout of one attempt.
    pub timeout: Duration,
    /// How often the queue is looked at (besides being woken by a logout here).
    pub poll: Duration,
}

impl Default for BackchannelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            deliver: true,
            retry_base: 10,
            max_attempts: MAX_ATTEMPTS,
            timeout: Duration::from_secs(5),
            poll: Duration::from_secs(1),
        }
    }
}

/// Rows leased per round.
const BATCH: u32 = 16;
/// A lease outlives an attempt by far; an instance that died mid-delivery
/// loses its rows to another after this.
const LEASE_SECS: i64 = 60;

/// Starts the worker; it stops when the state is dropped.
pub(crate) fn spawn(weak: Weak<Inner>, wake: Arc<tokio::sync::Notify>, poll: Duration) {
    let owner = secret::random_id();
    tokio::spawn(async move {
        // One client for every delivery: public addresses only (crate::outbound).
        let http = match weak.upgrade() {
            Some(inner) => {
                crate::outbound::client(&inner.redirect_policy, inner.config.backchannel.timeout)
            }
            None => return,
        };
        loop {
            {
                let Some(inner) = weak.upgrade() else { return };
                if let Err(e) = round(&inner, &http, &owner).await {
                    tracing::warn!(error = %e, "back-channel logout queue unavailable; will retry");
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    });
}

/// Leases what is due and delivers it, concurrently.
async fn round(
    inner: &Arc<Inner>,
    http: &reqwest::Client,
    owner: &str,
) -> Result<(), gatehouse_core::ports::StoreError> {
    let now = inner.clock.now();
    let due = inner
        .store
        .claim_logout_deliveries(owner, now, now + LEASE_SECS, BATCH)
        .await?;
    let mut tasks = JoinSet::new();
    for d in due {
        let inner = inner.clone();
        let http = http.clone();
        let owner = owner.to_owned();
        tasks.spawn(async move {
            let result = attempt(&inner, &http, &d).await;
            let outcome = outcome(&inner, &d, result);
            let now = inner.clock.now();
            if let Err(e) = inner
                .store
                .finish_logout_delivery(d.seq, &owner, &outcome, now)
                .await
            {
                tracing::warn!(error = %e, seq = d.seq, "could not record a back-channel logout outcome");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Why an attempt failed: the status when the app answered, and a short reason.
struct Failure {
    status: Option<i64>,
    error: String,
}

fn outcome(inner: &Inner, d: &LogoutDelivery, result: Result<i64, Failure>) -> Outcome {
    let cfg = &inner.config.backchannel;
    let attempts = d.attempts + 1;
    match result {
        Ok(status) => {
            tracing::info!(client_id = %d.client_id, seq = d.seq, "back-channel logout delivered");
            Outcome::Delivered { status }
        }
        Err(f) if attempts < cfg.max_attempts => {
            tracing::info!(client_id = %d.client_id, seq = d.seq, attempts, error = %f.error, "back-channel logout attempt failed; will retry");
            Outcome::Retry {
                at: inner.clock.now() + backoff(cfg.retry_base, attempts),
                status: f.status,
                error: f.error,
            }
        }
        Err(f) => {
            tracing::warn!(client_id = %d.client_id, seq = d.seq, attempts, error = %f.error, "back-channel logout given up");
            let audit = AuditEvent::new(
                &worker_actor(),
                &d.org_id,
                inner.clock.now(),
                "app.backchannel_logout_failed",
                &d.client_id,
                format!(
                    "back-channel logout not delivered to `{}` after {attempts} attempts (last: {})",
                    d.uri, f.error
                ),
            );
            Outcome::Failed {
                status: f.status,
                error: f.error,
                audit,
            }
        }
    }
}

/// Who gives up a delivery, in the audit log.
fn worker_actor() -> Actor {
    Actor {
        kind: ActorKind::Operator,
        id: "gatehouse".into(),
        name: "back-channel logout".into(),
        org_id: None,
        address: "server".into(),
    }
}

/// One POST; the app's status on success (2xx).
async fn attempt(
    inner: &Inner,
    http: &reqwest::Client,
    d: &LogoutDelivery,
) -> Result<i64, Failure> {
    let fail = |error: String| Failure {
        status: None,
        error,
    };
    let url = url::Url::parse(&d.uri).map_err(|_| fail("the URI does not parse".into()))?;
    // The policy again (it may have changed since the URI was registered); the
    // client's resolver then connects to public addresses only.
    inner
        .redirect_policy
        .outbound_addresses(&d.uri)
        .await
        .map_err(|why| fail(format!("refused: {why}")))?;
    let token = logout_token(inner, d).map_err(fail)?;
    let resp = http
        .post(url)
        .header("cache-control", "no-cache, no-store")
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .map_err(|e| fail(describe(&e)))?;
    let status = i64::from(resp.status().as_u16());
    // §2.8: 200 (or 204) is success; the body is never read.
    drop(resp);
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(Failure {
            status: Some(status),
            error: format!("the app answered {status}"),
        })
    }
}

/// A network error without the URL's query (it could carry anything).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

fn logout_token(inner: &Inner, d: &LogoutDelivery) -> Result<String, String> {
    let now = inner.clock.now();
    let claims = logout_token_claims(&inner.config.issuer, d, &secret::random_id(), now);
    let key = inner
        .keys()
        .active(SigningAlg::RS256)
        .ok_or_else(|| "no active RS256 signing key".to_owned())?;
    let body = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
    key.sign_typed(TYP, &body)
        .map_err(|_| "could not sign the logout token".to_owned())
}
