//! `gatehouse copy --from sqlite://… --to postgres://…`: moves an installation to
//! PostgreSQL. The target is migrated first and must be empty; every row is copied
//! in one target transaction (a failure leaves nothing half copied), with a
//! progress bar on standard error. Column types are read from the target, so the
//! copy follows the schema rather than a hand-kept list of columns.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::{AssertSqlSafe, Row};

use crate::db::{self, DbOptions};

/// Every table, parents before children (foreign keys).
const TABLES: &[&str] = &[
    "orgs",
    "roles",
    "users",
    "apis",
    "apps",
    "app_secrets",
    "reference_tokens",
    "signing_keys",
    "changes",
    "sessions",
    "grants",
    "auth_codes",
    "refresh_tokens",
    "consents",
    "revoked_tokens",
    "audit_events",
];

pub async fn run(from: &str, to: &str) -> anyhow::Result<()> {
    if !from.starts_with("sqlite:") || !db::is_postgres(to) {
        bail!("copy moves a sqlite:// database to a postgres:// one");
    }
    db::require_existing(from)?;
    let opts = DbOptions {
        pg_max_connections: 2,
        ..DbOptions::default()
    };
    let src = db::open_sqlite(from, &opts).await?;
    let dst = db::open_postgres(to, &opts).await?;
    let mut tx = dst
        .pool()
        .begin()
        .await
        .context("cannot start a transaction on the target")?;

    let mut total = 0u64;
    for t in TABLES {
        let there: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
            .fetch_one(&mut *tx)
            .await?;
        if there > 0 {
            bail!(
                "the target is not empty (table {t} has {there} rows); copy only into a fresh database"
            );
        }
        let here: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
            .fetch_one(src.pool())
            .await?;
        total += here as u64;
    }

    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len} rows ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    for t in TABLES {
        bar.set_message(*t);
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(*t)
        .fetch_all(&mut *tx)
        .await?;
        let names = columns
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let params = (1..=columns.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let insert = format!("INSERT INTO {t} ({names}) VALUES ({params})");
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {names} FROM {t}")))
            .fetch_all(src.pool())
            .await
            .with_context(|| format!("cannot read {t} from the source"))?;
        for row in &rows {
            let mut q = sqlx::query(AssertSqlSafe(insert.clone()));
            for (i, (name, ty)) in columns.iter().enumerate() {
                q = match ty.as_str() {
                    "bigint" | "integer" | "smallint" => q.bind(
                        row.try_get::<Option<i64>, _>(i)
                            .with_context(|| format!("{t}.{name}"))?,
                    ),
                    "boolean" => q.bind(
                        row.try_get::<Option<bool>, _>(i)
                            .with_context(|| format!("{t}.{name}"))?,
                    ),
                    _ => q.bind(
                        row.try_get::<Option<String>, _>(i)
                            .with_context(|| format!("{t}.{name}"))?,
                    ),
                };
            }
            q.execute(&mut *tx)
                .await
                .with_context(|| format!("cannot write a row of {t}"))?;
            bar.inc(1);
        }
    }
    // The change feed and the audit log continue from where the source left off.
    sqlx::query("SELECT setval(pg_get_serial_sequence('changes', 'seq'), GREATEST((SELECT COALESCE(MAX(seq), 0) FROM changes), 1))")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT setval(pg_get_serial_sequence('audit_events', 'seq'), GREATEST((SELECT COALESCE(MAX(seq), 0) FROM audit_events), 1))")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT setval(pg_get_serial_sequence('app_secrets', 'seq'), GREATEST((SELECT COALESCE(MAX(seq), 0) FROM app_secrets), 1))")
        .execute(&mut *tx)
        .await?;
    tx.commit().await.context("cannot commit the copy")?;
    bar.finish_with_message("done");
    eprintln!(
        "copied {total} rows from {} to {}",
        db::redact(from),
        db::redact(to)
    );
    Ok(())
}
