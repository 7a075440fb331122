//! When each app was last used, kept in memory and written to the store in
//! batches by the housekeeping task: the token hot path stays free of database
//! writes, and "last used" is exact to the minute.

use std::collections::HashMap;
use std::sync::Mutex;

use gatehouse_core::clock::UnixTime;

#[derive(Default)]
pub struct UsageLog {
    pending: Mutex<HashMap<String, UnixTime>>,
}

impl UsageLog {
    /// Notes that `client_id` authenticated at `now` (rounded down to the minute,
    /// so repeated use within a minute costs a lookup and nothing more).
    pub fn record(&self, client_id: &str, now: UnixTime) {
        let minute = now - now.rem_euclid(60);
        let mut pending = match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        match pending.get_mut(client_id) {
            Some(at) if *at >= minute => {}
            Some(at) => *at = minute,
            None => {
                // Bounded: authenticated clients only, and flushed every minute.
                pending.insert(client_id.to_owned(), minute);
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
    fn keeps_the_latest_minute_per_app() {
        let log = UsageLog::default();
        log.record("a", 125);
        log.record("a", 170);
        log.record("a", 61);
        log.record("b", 59);
        let mut got = log.take();
        got.sort();
        assert_eq!(got, vec![("a".into(), 120), ("b".into(), 0)]);
        assert!(log.take().is_empty());
        log.restore(vec![("a".into(), 120)]);
        log.record("a", 200);
        assert_eq!(log.take(), vec![("a".into(), 180)]);
    }
}
