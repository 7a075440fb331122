//! Apps' usage over the last 30 days as the console shows it: a small bar chart
//! drawn on the server (inline SVG, no script) of tokens issued (up) and failed
//! client authentications (down) per UTC day, with its text alternative (the
//! SVG's `<title>`/`<desc>`, and a table of every day's figures).
//!
//! Reads what the housekeeping wrote ([`crate::usage`]); the figures are at most
//! one housekeeping interval behind.

use std::collections::HashMap;

use askama::Template;
use gatehouse_core::model::AppUsageDay;

use super::Step;
use super::view::date;
use crate::pages;
use crate::state::AppState;

/// Days shown, today included.
pub const DAYS: i64 = 30;
/// The SVG's drawing box: one 10-unit slot per day, a half for each series.
const WIDTH: i64 = DAYS * 10;
const HALF: i64 = 46;

/// One day: its figures and its two bars (SVG user units).
pub struct Day {
    pub date: String,
    pub tokens: i64,
    pub failed: i64,
    x: i64,
    token_h: i64,
    failed_h: i64,
}

/// An app's last 30 days.
pub struct Usage {
    pub days: Vec<Day>,
    pub tokens: i64,
    pub failed: i64,
}

impl Usage {
    /// The 30 days up to `today` (days since 1970-01-01) from the app's rows
    /// (any order; days without a row count zero).
    pub fn of(rows: &[AppUsageDay], today: i64) -> Usage {
        let first = today - DAYS + 1;
        let mut counts = vec![(0_i64, 0_i64); DAYS as usize];
        for r in rows {
            if let Some(slot) = usize::try_from(r.day - first)
                .ok()
                .and_then(|i| counts.get_mut(i))
            {
                slot.0 += r.tokens_issued;
                slot.1 += r.failed_auths;
            }
        }
        let max_t = counts.iter().map(|c| c.0).max().unwrap_or(0).max(1);
        let max_f = counts.iter().map(|c| c.1).max().unwrap_or(0).max(1);
        let scale = |n: i64, max: i64| if n <= 0 { 0 } else { (n * HALF / max).max(1) };
        let days = counts
            .iter()
            .zip(first..)
            .enumerate()
            .map(|(i, (&(tokens, failed), day))| Day {
                date: date(day),
                tokens,
                failed,
                x: i as i64 * 10 + 1,
                token_h: scale(tokens, max_t),
                failed_h: scale(failed, max_f),
            })
            .collect();
        Usage {
            days,
            tokens: counts.iter().map(|c| c.0).sum(),
            failed: counts.iter().map(|c| c.1).sum(),
        }
    }

    /// How busy the app was: what the organization's home sorts by.
    pub fn activity(&self) -> i64 {
        self.tokens + self.failed
    }

    /// The chart with its text alternative, as HTML; `id` makes its element
    /// ids unique on the page, `name` is the app's.
    pub fn chart(&self, id: &str, name: &str, compact: bool) -> String {
        let busiest = self
            .days
            .iter()
            .filter(|d| d.tokens > 0)
            .max_by_key(|d| (d.tokens, std::cmp::Reverse(d.date.clone())));
        let first = self.days.first().map_or("", |d| d.date.as_str());
        let last = self.days.last().map_or("", |d| d.date.as_str());
        let mut desc = format!(
            "{} tokens issued and {} failed authentications from {first} to {last} (UTC days).",
            self.tokens, self.failed
        );
        if let Some(b) = busiest {
            desc.push_str(&format!(" Most tokens on {}: {}.", b.date, b.tokens));
        }
        let chart = Chart {
            id,
            name,
            desc: &desc,
            usage: self,
            width: WIDTH,
            compact,
        };
        chart.render().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "usage chart did not render");
            String::new()
        })
    }
}

#[derive(Template)]
#[template(path = "console/usage_chart.html")]
struct Chart<'a> {
    id: &'a str,
    name: &'a str,
    desc: &'a str,
    usage: &'a Usage,
    width: i64,
    compact: bool,
}

/// The organization's apps' rows of the last 30 days up to `today`, by client id.
pub async fn org_usage(
    state: &AppState,
    org_id: &str,
    today: i64,
) -> Step<HashMap<String, Vec<AppUsageDay>>> {
    let rows = state
        .store
        .app_usage(org_id, today - DAYS + 1)
        .await
        .map_err(pages::store_failure)?;
    let mut by_app: HashMap<String, Vec<AppUsageDay>> = HashMap::new();
    for r in rows {
        by_app.entry(r.client_id.clone()).or_default().push(r);
    }
    Ok(by_app)
}

/// Today, as days since 1970-01-01 (UTC).
pub fn today(state: &AppState) -> i64 {
    state.clock.now().div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: i64, t: i64, f: i64) -> AppUsageDay {
        AppUsageDay {
            client_id: "a".into(),
            day,
            tokens_issued: t,
            failed_auths: f,
        }
    }

    #[test]
    fn thirty_days_up_to_today_with_zeros_between() {
        let today = 20_000;
        let u = Usage::of(
            &[
                row(today, 4, 1),
                row(today - 29, 2, 0),
                row(today - 30, 9, 9),
            ],
            today,
        );
        assert_eq!(u.days.len(), 30);
        assert_eq!((u.tokens, u.failed), (6, 1));
        assert_eq!((u.days[0].tokens, u.days[29].tokens), (2, 4));
        assert_eq!(u.days[29].date, "2024-10-04");
        assert_eq!((u.days[29].token_h, u.days[0].token_h), (HALF, HALF / 2));
        assert_eq!(u.days[29].failed_h, HALF);
        assert_eq!(u.days[5].token_h, 0);
    }

    #[test]
    fn the_chart_names_its_figures() {
        let u = Usage::of(&[row(20_000, 4, 1), row(19_999, 7, 0)], 20_000);
        let html = u.chart("usage", "Nightly <sync>", false);
        assert!(html.contains(r#"role="img""#), "{html}");
        assert!(html.contains(r#"aria-labelledby="usage-title usage-desc""#));
        assert!(html.contains("11 tokens issued and 1 failed authentications"));
        assert!(html.contains("Most tokens on 2024-10-03: 7."));
        assert!(html.contains("Nightly &#60;sync&#62;") || html.contains("Nightly &lt;sync&gt;"));
        assert!(
            html.contains("<td>2024-10-04</td><td>4</td><td>1</td>"),
            "{html}"
        );
    }
}
