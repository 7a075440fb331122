//! OpenID Connect Back-Channel Logout 1.0: what an app registers, the durable
//! queue of deliveries, the logout token's claims (§2.4) and the retry schedule.
//! No I/O here: the store keeps the queue (enqueued in the transaction that
//! ends the session), the server's worker delivers.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::model::AuditEvent;
use crate::ports::StoreResult;

/// The `events` member that makes a JWT a logout token (§2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The logout token's JOSE `typ` (§2.4, explicit typing per RFC 8725 §3.11).
pub const TYP: &str = "logout+jwt";
/// A logout token is good for this long: it is signed at each attempt.
pub const TOKEN_TTL: i64 = 120;

/// An app's registration (§2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackchannelLogout {
    pub uri: String,
    /// `backchannel_logout_session_required`: the app needs `sid` in the token.
    pub session_required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One logout token to deliver to one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogoutDelivery {
    pub seq: i64,
    pub client_id: String,
    #[serde(skip)]
    pub org_id: String,
    pub uri: String,
    pub sub: String,
    pub sid: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: UnixTime,
    /// The HTTP status of the last attempt, when it got one.
    pub last_status: Option<i64>,
    /// Why the last attempt failed (no secrets: a status line or a network error).
    pub last_error: Option<String>,
    pub created_at: UnixTime,
    pub finished_at: Option<UnixTime>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        status: i64,
    },
    /// Try again at `at`.
    Retry {
        at: UnixTime,
        status: Option<i64>,
        error: String,
    },
    /// No more attempts; `audit` records it.
    Failed {
        status: Option<i64>,
        error: String,
        audit: AuditEvent,
    },
}

/// The retry schedule: `attempts` made so far (≥ 1) → seconds to wait before
/// the next. Doubling from `base`, capped at 20 minutes.
pub fn backoff(base: i64, attempts: i64) -> i64 {
    let shift = attempts.clamp(1, 20) - 1;
    base.max(1).saturating_mul(1 << shift).min(1200)
}

/// Attempts before a delivery is given up: with a 10 s base, about an hour.
pub const MAX_ATTEMPTS: i64 = 10;

/// The logout token's claims (§2.4): never a `nonce`.
pub fn logout_token_claims(issuer: &str, d: &LogoutDelivery, jti: &str, now: UnixTime) -> Value {
    let mut c = json!({
        "iss": issuer,
        "aud": d.client_id,
        "iat": now,
        "exp": now + TOKEN_TTL,
        "jti": jti,
        "sub": d.sub,
        "events": { EVENT: {} },
    });
    if let (Some(sid), Value::Object(m)) = (&d.sid, &mut c) {
        m.insert("sid".into(), json!(sid));
    }
    c
}

/// The queue and the registrations. Deliveries are enqueued by
/// [`crate::ports::SessionStore::end_session`] and by deactivating a person,
/// in their own transactions.
#[async_trait]
pub trait BackchannelStore: Send + Sync {
    async fn backchannel_logout(&self, client_id: &str) -> StoreResult<Option<BackchannelLogout>>;
    /// Sets (or with `None` removes) the app's registration, with the audit event.
    async fn set_backchannel_logout(
        &self,
        client_id: &str,
        reg: Option<&BackchannelLogout>,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Leases up to `limit` pending deliveries due at `now` to `owner` until
    /// `lease_until`: a row leased to another owner whose lease has not run
    /// out is not handed out again (several instances, one queue).
    async fn claim_logout_deliveries(
        &self,
        owner: &str,
        now: UnixTime,
        lease_until: UnixTime,
        limit: u32,
    ) -> StoreResult<Vec<LogoutDelivery>>;
    /// Records an attempt's outcome (only while `owner` holds the lease).
    async fn finish_logout_delivery(
        &self,
        seq: i64,
        owner: &str,
        outcome: &Outcome,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// Whether ending a session enqueues logouts (the operator's switch,
    /// `serve --backchannel-logout`; on unless turned off). Off, nothing is
    /// queued anywhere: every enqueue in the store checks it.
    fn set_logouts_enabled(&self, on: bool);
    /// The app's most recent deliveries, newest first.
    async fn logout_deliveries(
        &self,
        client_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<LogoutDelivery>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let waits: Vec<i64> = (1..MAX_ATTEMPTS).map(|n| backoff(10, n)).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1200, 1200]);
        let total: i64 = waits.iter().sum();
        assert!((3000..=4000).contains(&total), "{total}");
    }

    #[test]
    fn a_logout_token_has_the_event_and_no_nonce() {
        let d = LogoutDelivery {
            seq: 1,
            client_id: "c".into(),
            org_id: "o".into(),
            uri: "https://a/".into(),
            sub: "u".into(),
            sid: Some("s".into()),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: 0,
            last_status: None,
            last_error: None,
            created_at: 0,
            finished_at: None,
        };
        let c = logout_token_claims("https://id", &d, "j", 100);
        assert_eq!(c["aud"], "c");
        assert_eq!(c["sid"], "s");
        assert_eq!(c["exp"], 100 + TOKEN_TTL);
        assert_eq!(c["events"][EVENT], json!({}));
        assert!(c.get("nonce").is_none());
    }
}
