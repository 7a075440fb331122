//! Each app's use, kept in memory and written to the store in batches by the
//! housekeeping task: when it was last used, and per UTC day how many tokens it
//! was issued and how many of its client authentications failed. The token hot
//! path stays free of database writes: noting a use is one map lookup under a
//! mutex, with no allocation while the app's entry exists. "Last used" is at
//! most a housekeeping interval behind, the counts likewise. The time kept is a
//! real use's, to the second (not rounded down: that made `last_used_at`
//! earlier than the `created_at` of an app used in its first minute).
//!
//! Bounded: only apps that exist are noted (authenticated ones, or ones whose
//! secret was wrong), so unknown client ids cannot grow the map; it is emptied
//! by every flush.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::AppUsageDay;

const DAY: i64 = 86_400;

/// One app's pending use.
#[derive(Default)]
struct Entry {
    last_used: Option<UnixTime>,
    /// Per secret id, its last use (one or two: an app has at most two active).
    secrets: Vec<(String, UnixTime)>,
    /// (day, tokens issued, failed authentications); one element unless a flush
    /// was missed across midnight.
    days: Vec<(i64, i64, i64)>,
}

impl Entry {
    fn day(&mut self, now: UnixTime) -> &mut (i64, i64, i64) {
        let day = now.div_euclid(DAY);
        let at = match self.days.iter().position(|d| d.0 == day) {
            Some(at) => at,
            None => {
                self.days.push((day, 0, 0));
                self.days.len() - 1
            }
        };
        &mut self.days[at]
    }
}

/// What a flush writes: last uses, and counts per app and day.
#[derive(Debug, Default, PartialEq)]
pub struct Taken {
    pub uses: Vec<(String, UnixTime)>,
    pub secret_uses: Vec<SecretUse>,
    pub counts: Vec<AppUsageDay>,
}

/// When one secret of an app last authenticated it.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretUse {
    pub client_id: String,
    pub secret_id: String,
    pub at: UnixTime,
}

#[derive(Default)]
pub struct UsageLog {
    pending: Mutex<HashMap<String, Entry>>,
}

impl UsageLog {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn with(&self, client_id: &str, f: impl FnOnce(&mut Entry)) {
        let mut pending = self.lock();
        match pending.get_mut(client_id) {
            Some(e) => f(e),
            None => f(pending.entry(client_id.to_owned()).or_default()),
        }
    }

    /// Notes that `client_id` authenticated at `now`; a later use within the same
    /// minute as the one noted costs a lookup and nothing more.
    pub fn record(&self, client_id: &str, now: UnixTime) {
        let minute = |t: UnixTime| t - t.rem_euclid(60);
        self.with(client_id, |e| match e.last_used {
            Some(at) if minute(at) >= minute(now) => {}
            _ => e.last_used = Some(now),
        });
    }

    /// Notes that `client_id` authenticated with its secret `secret_id` at
    /// `now`: the app's last use and the secret's, in one lookup (and, within
    /// the minute of the last noted use, no allocation).
    pub fn record_secret(&self, client_id: &str, secret_id: &str, now: UnixTime) {
        let minute = |t: UnixTime| t - t.rem_euclid(60);
        self.with(client_id, |e| {
            match e.last_used {
                Some(at) if minute(at) >= minute(now) => {}
                _ => e.last_used = Some(now),
            }
            match e.secrets.iter_mut().find(|(id, _)| id == secret_id) {
                Some((_, at)) if minute(*at) >= minute(now) => {}
                Some((_, at)) => *at = now,
                None => e.secrets.push((secret_id.to_owned(), now)),
            }
        });
    }

    /// Puts back secrets' last uses that could not be written, unless newer
    /// use was noted meanwhile.
    pub fn restore_secret_uses(&self, uses: Vec<SecretUse>) {
        for u in uses {
            self.with(&u.client_id, |e| {
                match e.secrets.iter_mut().find(|(id, _)| *id == u.secret_id) {
                    Some((_, seen)) => *seen = (*seen).max(u.at),
                    None => e.secrets.push((u.secret_id, u.at)),
                }
            });
        }
    }

    /// Notes a token issued to `client_id` (an app that exists) at `now`.
    pub fn issued(&self, client_id: &str, now: UnixTime) {
        self.with(client_id, |e| e.day(now).1 += 1);
    }

    /// Notes a failed client authentication of `client_id`, an app that exists
    /// (the caller checks: unknown ids are not counted).
    pub fn failed(&self, client_id: &str, now: UnixTime) {
        self.with(client_id, |e| e.day(now).2 += 1);
    }

    /// Everything noted since the last call.
    pub fn take(&self) -> Taken {
        let mut taken = Taken::default();
        for (client_id, e) in self.lock().drain() {
            for (day, tokens_issued, failed_auths) in e.days {
                taken.counts.push(AppUsageDay {
                    client_id: client_id.clone(),
                    day,
                    tokens_issued,
                    failed_auths,
                });
            }
            for (secret_id, at) in e.secrets {
                taken.secret_uses.push(SecretUse {
                    client_id: client_id.clone(),
                    secret_id,
                    at,
                });
            }
            if let Some(at) = e.last_used {
                taken.uses.push((client_id, at));
            }
        }
        taken
    }

    /// Puts back last uses that could not be written, unless newer use was
    /// noted meanwhile.
    pub fn restore_uses(&self, uses: Vec<(String, UnixTime)>) {
        for (client_id, at) in uses {
            self.record(&client_id, at);
        }
    }

    /// Puts back counts that could not be written (added to those noted meanwhile).
    pub fn restore_counts(&self, counts: Vec<AppUsageDay>) {
        for c in counts {
            self.with(&c.client_id, |e| {
                let d = e.day(c.day * DAY);
                d.1 += c.tokens_issued;
                d.2 += c.failed_auths;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_uses_are_noted_per_secret_and_put_back_when_unwritten() {
        let log = UsageLog::default();
        log.record_secret("a", "s1", 100);
        log.record_secret("a", "s2", 130);
        log.record_secret("a", "s1", 110);
        let taken = log.take();
        assert_eq!(taken.uses, vec![("a".into(), 130)]);
        let mut got: Vec<_> = taken
            .secret_uses
            .iter()
            .map(|u| (u.secret_id.as_str(), u.at))
            .collect();
        got.sort();
        assert_eq!(got, vec![("s1", 100), ("s2", 130)]);
        log.restore_secret_uses(taken.secret_uses);
        log.record_secret("a", "s1", 200);
        let mut again = log.take().secret_uses;
        again.sort_by(|x, y| x.secret_id.cmp(&y.secret_id));
        assert_eq!((again[0].at, again[1].at), (200, 130));
    }

    #[test]
    fn keeps_a_real_use_of_the_latest_minute_per_app() {
        let log = UsageLog::default();
        log.record("a", 125);
        log.record("a", 170);
        log.record("a", 61);
        log.record("b", 59);
        let mut got = log.take().uses;
        got.sort();
        assert_eq!(got, vec![("a".into(), 125), ("b".into(), 59)]);
        assert_eq!(log.take(), Taken::default());
        log.restore_uses(vec![("a".into(), 125)]);
        log.record("a", 200);
        assert_eq!(log.take().uses, vec![("a".into(), 200)]);
    }

    #[test]
    fn a_use_in_the_first_minute_is_not_before_the_creation() {
        let created_at = 1_000_030;
        let log = UsageLog::default();
        log.record("a", created_at + 5);
        assert!(log.take().uses[0].1 >= created_at);
    }

    #[test]
    fn counts_tokens_and_failures_per_app_and_utc_day() {
        let log = UsageLog::default();
        let day = 20_000 * DAY;
        log.issued("a", day + 10);
        log.issued("a", day + DAY - 1);
        log.failed("a", day + 5);
        log.issued("a", day + DAY); // the next day
        log.failed("b", day);
        let mut got = log.take().counts;
        got.sort_by(|x, y| (&x.client_id, x.day).cmp(&(&y.client_id, y.day)));
        let c = |id: &str, day, t, f| AppUsageDay {
            client_id: id.into(),
            day,
            tokens_issued: t,
            failed_auths: f,
        };
        assert_eq!(
            got,
            vec![
                c("a", 20_000, 2, 1),
                c("a", 20_001, 1, 0),
                c("b", 20_000, 0, 1)
            ]
        );
        // What could not be written comes back on top of what came meanwhile.
        log.issued("a", day);
        log.restore_counts(vec![c("a", 20_000, 2, 1)]);
        assert_eq!(log.take().counts, vec![c("a", 20_000, 3, 1)]);
    }
}
