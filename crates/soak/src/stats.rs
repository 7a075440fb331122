//! What the load generator counts: per kind of request, how many, how many
//! answered as they must, and every kind of failure apart (a 5xx, a hang, a
//! connection error, a wrong answer), with latencies for p50/p99; the 503s and
//! lost connections a fault explains are counted apart, not as errors.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Default)]
pub struct KindStats {
    pub requests: u64,
    pub ok: u64,
    pub wrong: u64,
    pub server_errors: u64,
    pub hangs: u64,
    pub conn_errors: u64,
    /// 503 with Retry-After while a fault made the database unavailable.
    pub unavailable_in_fault: u64,
    /// Connection refused/reset by the instance a fault had killed.
    pub down_in_fault: u64,
    latencies_us: Vec<u32>,
}

#[derive(Debug, Serialize)]
pub struct KindSummary {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub wrong: u64,
    pub server_errors: u64,
    pub hangs: u64,
    pub conn_errors: u64,
    pub unavailable_in_fault: u64,
    pub down_in_fault: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl KindStats {
    pub fn errors(&self) -> u64 {
        self.wrong + self.server_errors + self.hangs + self.conn_errors
    }

    fn summary(&mut self) -> KindSummary {
        self.latencies_us.sort_unstable();
        let q = |p: f64| -> f64 {
            if self.latencies_us.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            f64::from(self.latencies_us[i]) / 1000.0
        };
        KindSummary {
            requests: self.requests,
            ok: self.ok,
            errors: self.errors(),
            wrong: self.wrong,
            server_errors: self.server_errors,
            hangs: self.hangs,
            conn_errors: self.conn_errors,
            unavailable_in_fault: self.unavailable_in_fault,
            down_in_fault: self.down_in_fault,
            p50_ms: q(0.50),
            p99_ms: q(0.99),
            max_ms: q(1.0),
        }
    }
}

/// How one request ended, as far as the counters care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Wrong,
    ServerError,
    Hang,
    ConnError,
    UnavailableInFault,
    DownInFault,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub kinds: BTreeMap<&'static str, KindStats>,
    /// Per minute since the start: requests, errors.
    pub minutes: Vec<(u64, u64)>,
    /// The first errors, described (never a secret or a whole token).
    pub samples: Vec<String>,
    /// How long after an ending was acknowledged the gateway refused the token.
    pub ended_lag_ms: Vec<u64>,
}

const MAX_SAMPLES: usize = 60;

impl Stats {
    pub fn record(
        &mut self,
        kind: &'static str,
        minute: usize,
        outcome: Outcome,
        latency: Option<Duration>,
    ) {
        let k = self.kinds.entry(kind).or_default();
        k.requests += 1;
        match outcome {
            Outcome::Ok => k.ok += 1,
            Outcome::Wrong => k.wrong += 1,
            Outcome::ServerError => k.server_errors += 1,
            Outcome::Hang => k.hangs += 1,
            Outcome::ConnError => k.conn_errors += 1,
            Outcome::UnavailableInFault => k.unavailable_in_fault += 1,
            Outcome::DownInFault => k.down_in_fault += 1,
        }
        if let Some(l) = latency {
            k.latencies_us
                .push(u32::try_from(l.as_micros()).unwrap_or(u32::MAX));
        }
        if self.minutes.len() <= minute {
            self.minutes.resize(minute + 1, (0, 0));
        }
        self.minutes[minute].0 += 1;
        if matches!(
            outcome,
            Outcome::Wrong | Outcome::ServerError | Outcome::Hang | Outcome::ConnError
        ) {
            self.minutes[minute].1 += 1;
        }
    }

    pub fn sample(&mut self, what: String) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(what);
        }
    }

    pub fn summaries(&mut self) -> BTreeMap<&'static str, KindSummary> {
        self.kinds
            .iter_mut()
            .map(|(k, v)| (*k, v.summary()))
            .collect()
    }
}
