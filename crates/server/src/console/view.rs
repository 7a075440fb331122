//! What every console page shows around its content (the navigation), and how
//! values are written out for people.

use gatehouse_core::clock::UnixTime;

/// The header of every console page.
pub struct Nav {
    pub org: String,
    pub email: String,
    /// For the sign-out form.
    pub csrf: String,
    /// "home", "apps", "users", "roles" or "audit": the highlighted entry.
    pub section: &'static str,
    pub can_apps: bool,
    pub can_users: bool,
}

/// `2026-11-23 14:05 UTC`.
pub fn when(t: UnixTime) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// `2026-11-23`: a UTC day given as days since 1970-01-01.
pub fn date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::when(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::when(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(super::when(1_795_444_000), "2026-11-23 14:26 UTC");
        assert_eq!(super::date(1_795_444_000 / 86_400), "2026-11-23");
    }
}
