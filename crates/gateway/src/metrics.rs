//! Prometheus metrics of the gateway (prometheus-client): each decision by
//! outcome (allowed, or the refusal's reason), the upstream's latency, and,
//! read when scraped, the revocation feed's staleness and the JWKS fetches.
//!
//! Labels are `&'static str`s from fixed lists, so the hot path costs a hash
//! lookup under a read lock and an atomic increment; nothing here decides.

use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::validator::{Inner, Validator};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The gateway's counters; a cheap clone (`Arc`-backed families).
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    decisions: Family<OutcomeLabels, Counter>,
    upstream_duration: Histogram,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self {
            decisions: Family::default(),
            // 1 ms … ~33 s.
            upstream_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
        }
    }
}

impl GatewayMetrics {
    /// One request's decision: `allowed`, or why it was refused.
    pub fn record_decision(&self, outcome: &'static str) {
        self.decisions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// How long the upstream (or the demo API) took to answer.
    pub fn record_upstream(&self, took: std::time::Duration) {
        self.upstream_duration.observe(took.as_secs_f64());
    }

    /// The families, and a collector reading `validator`'s feed and keys.
    pub fn registry(&self, validator: &Validator) -> Registry {
        let mut r = Registry::default();
        r.register(
            "gatehouse_gateway_decisions",
            "Requests decided by the gateway, by outcome (allowed, or the refusal's reason)",
            self.decisions.clone(),
        );
        r.register(
            "gatehouse_gateway_upstream_duration_seconds",
            "Time the upstream took to answer a forwarded request",
            self.upstream_duration.clone(),
        );
        r.register_collector(Box::new(FeedAndKeys(std::sync::Arc::downgrade(
            &validator.0,
        ))));
        r
    }
}

/// JWKS fetches by result, kept by [`crate::jwks::Jwks`].
#[derive(Debug, Default)]
pub struct FetchCounts {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

impl FetchCounts {
    pub fn record(&self, ok: bool) {
        let c = if ok { &self.ok } else { &self.failed };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

struct FeedAndKeys(Weak<Inner>);

impl std::fmt::Debug for FeedAndKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeedAndKeys")
    }
}

impl Collector for FeedAndKeys {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(inner) = self.0.upgrade() else {
            return Ok(());
        };
        if let Some(age) = inner.feed.age() {
            let g = ConstGauge::new(age.as_secs_f64());
            g.encode(encoder.encode_descriptor(
                "gatehouse_gateway_feed_last_sync_age_seconds",
                "Seconds since the revocation feed last answered (its lag behind the issuer)",
                None,
                g.metric_type(),
            )?)?;
        }
        let stale = ConstGauge::new(i64::from(inner.feed.is_stale()));
        stale.encode(encoder.encode_descriptor(
            "gatehouse_gateway_feed_stale",
            "1 while the revocation feed has been lost for longer than --max-feed-staleness-secs",
            None,
            stale.metric_type(),
        )?)?;
        let keys = ConstGauge::new(i64::try_from(inner.jwks.len()).unwrap_or(i64::MAX));
        keys.encode(encoder.encode_descriptor(
            "gatehouse_gateway_jwks_keys",
            "Keys in the cached JWKS",
            None,
            keys.metric_type(),
        )?)?;
        let counts = inner.jwks.fetches();
        let c = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "gatehouse_gateway_jwks_refreshes",
            "JWKS fetches from the issuer, by result",
            None,
            c.metric_type(),
        )?;
        for (result, n) in [("ok", &counts.ok), ("failed", &counts.failed)] {
            ConstCounter::new(n.load(Ordering::Relaxed))
                .encode(family.encode_family(&ResultLabels { result })?)?;
        }
        Ok(())
    }
}
