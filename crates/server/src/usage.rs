//! When each app was last used, kept in memory and written to the store in
//! batches by the housekeeping task: the token hot path stays free of database
//! writes, and "last used" is at most a minute behind. The time kept is a real
//! use's, to the second (not rounded down: that made `last_used_at` earlier than
//! the `created_at` of an app used in its first minute).

use std::collections::HashMap;
use std::sync::Mutex;

use gatehouse_core::clock::UnixTime;

#[derive(Default)]
pub struct UsageLog {
    pending: Mutex<HashMap<String, UnixTime>>,
}

impl UsageLog {
    /// Notes that `client_id` authenticated at `now`; a later use within the same
    /// minute as the one noted costs a lookup and nothing more.
    pub fn record(&self, client_id: &str, now: UnixTime) {
        let minute = |t: UnixTime| t - t.rem_euclid(60);
        let mut pending = match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        match pending.get_mut(client_id) {
            Some(at) if minute(*at) >= minute(now) => {}
            Some(at) => *at = now,
            None => {
                // Bounded: authenticated clients only, and flushed every minute.
                pending.insert(client_id.to_owned(), now);
            }
        }
    }

    /// Everything noted since the last call.
    pub fn take(&self) -> Vec<(String, UnixTime)> {
        let mut pending = match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        pending.drain().collect()
    }

    /// Puts back what could not be written, unless newer use was noted meanwhile.
    pub fn restore(&self, uses: Vec<(String, UnixTime)>) {
        for (client_id, at) in uses {
            self.record(&client_id, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_real_use_of_the_latest_minute_per_app() {
        let log = UsageLog::default();
        log.record("a", 125);
        log.record("a", 170);
        log.record("a", 61);
        log.record("b", 59);
        let mut got = log.take();
        got.sort();
        assert_eq!(got, vec![("a".into(), 125), ("b".into(), 59)]);
        assert!(log.take().is_empty());
        log.restore(vec![("a".into(), 125)]);
        log.record("a", 200);
        assert_eq!(log.take(), vec![("a".into(), 200)]);
    }

    #[test]
    fn a_use_in_the_first_minute_is_not_before_the_creation() {
        let created_at = 1_000_030;
        let log = UsageLog::default();
        log.record("a", created_at + 5);
        assert!(log.take()[0].1 >= created_at);
    }
}
