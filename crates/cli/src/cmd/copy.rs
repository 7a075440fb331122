//! `gatehouse copy --from sqlite://… --to postgres://…` (or back, from
//! `postgres://` to `sqlite://`): moves an installation between backends. The
//! target is migrated first and must be empty; every row is copied in one target
//! transaction (a failure leaves nothing half copied), with a progress bar on
//! standard error. Column names and types are read from the PostgreSQL side's
//! schema, so the copy follows the migrations rather than a hand-kept list of
//! columns; the list of tables is checked against that schema too, so a table a
//! new migration adds cannot be left behind silently.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::{AssertSqlSafe, PgPool, Row};

use crate::db::{self, DbOptions};

/// Every table copied, parents before children (foreign keys).
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
    "app_usage",
    "user_totp",
    "recovery_codes",
    "passkeys",
    "mail_links",
    "upstream_providers",
    "app_backchannel_logout",
    "logout_deliveries",
    // Short-lived, but copied so that what is under way (a device sign-in, a
    // pushed request, a sign-in at the identity provider) finishes after the
    // move, and a client assertion or passkey challenge cannot be replayed.
    "pushed_requests",
    "device_authorizations",
    "client_assertion_jtis",
    "passkey_challenges",
    "upstream_logins",
];

/// Tables left behind: the sign-in throttle's counters (they refill; a move
/// forgets recent failures, as a restart of the in-memory limiter would).
const SKIPPED: &[&str] = &["throttle", "_sqlx_migrations"];

/// Tables whose key is a sequence that the copy continues from (PostgreSQL
/// target; SQLite's AUTOINCREMENT follows the largest key inserted by itself).
const SEQUENCES: &[&str] = &[
    "changes",
    "audit_events",
    "app_secrets",
    "logout_deliveries",
];

/// One table's columns as the PostgreSQL side has them: (name, data type).
struct Table {
    name: &'static str,
    columns: Vec<(String, String)>,
}

impl Table {
    fn names(&self) -> String {
        self.columns
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn insert(&self) -> String {
        let params = (1..=self.columns.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "INSERT INTO {} ({}) VALUES ({params})",
            self.name,
            self.names()
        )
    }
}

/// One value, as the schema's three kinds of column hold it.
enum Cell {
    Int(Option<i64>),
    Bool(Option<bool>),
    Text(Option<String>),
}

pub async fn run(from: &str, to: &str) -> anyhow::Result<()> {
    let opts = DbOptions {
        pg_max_connections: 2,
        ..DbOptions::default()
    };
    let total = if from.starts_with("sqlite:") && db::is_postgres(to) {
        db::require_existing(from)?;
        let src = db::open_sqlite(from, &opts).await?;
        let dst = db::open_postgres(to, &opts).await?;
        to_postgres(src.pool(), dst.pool()).await?
    } else if db::is_postgres(from) && to.starts_with("sqlite:") {
        let src = db::open_postgres(from, &opts).await?;
        let dst = db::open_sqlite(to, &opts).await?;
        to_sqlite(src.pool(), dst.pool()).await?
    } else {
        bail!(
            "copy moves a sqlite:// database to a postgres:// one, or a postgres:// one to sqlite://"
        );
    };
    eprintln!(
        "copied {total} rows from {} to {}",
        db::redact(from),
        db::redact(to)
    );
    Ok(())
}

/// The columns of every table in [`TABLES`], read from PostgreSQL's schema;
/// refused when the schema has a table the copy does not know.
async fn schema(pg: &mut sqlx::PgConnection) -> anyhow::Result<Vec<Table>> {
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut *pg)
    .await?;
    if let Some(t) = present
        .iter()
        .find(|t| !TABLES.contains(&t.as_str()) && !SKIPPED.contains(&t.as_str()))
    {
        bail!("copy does not know the table {t} (a newer migration?): nothing was copied");
    }
    let mut tables = Vec::new();
    for name in TABLES {
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(*name)
        .fetch_all(&mut *pg)
        .await?;
        if columns.is_empty() {
            bail!("the PostgreSQL database has no table {name}");
        }
        tables.push(Table { name, columns });
    }
    Ok(tables)
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:>22} [{bar:40}] {pos}/{len} rows ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn refuse_rows(t: &str, there: i64) -> anyhow::Result<()> {
    if there > 0 {
        bail!(
            "the target is not empty (table {t} has {there} rows); copy only into a fresh database"
        );
    }
    Ok(())
}

/// Reads a row's cells by the PostgreSQL side's column types (a macro: the
/// two drivers' rows decode the same Rust types through different traits).
macro_rules! cells {
    ($row:expr, $table:expr) => {{
        let mut out = Vec::with_capacity($table.columns.len());
        for (i, (name, ty)) in $table.columns.iter().enumerate() {
            let at = || format!("{}.{name}", $table.name);
            out.push(match ty.as_str() {
                "bigint" | "integer" | "smallint" => {
                    Cell::Int($row.try_get::<Option<i64>, _>(i).with_context(at)?)
                }
                "boolean" => Cell::Bool($row.try_get::<Option<bool>, _>(i).with_context(at)?),
                "text" | "character varying" => {
                    Cell::Text($row.try_get::<Option<String>, _>(i).with_context(at)?)
                }
                other => bail!("{}: copy cannot move a column of type {other}", at()),
            });
        }
        out
    }};
}

/// Binds a row's cells to an insert.
macro_rules! bind_all {
    ($q:expr, $cells:expr) => {{
        let mut q = $q;
        for c in $cells {
            q = match c {
                Cell::Int(v) => q.bind(v),
                Cell::Bool(v) => q.bind(v),
                Cell::Text(v) => q.bind(v),
            };
        }
        q
    }};
}

/// Refuses a target that holds rows, then copies every table from the pool
/// `$src` into the transaction `$tx`: the number of rows copied. (A macro:
/// the two directions differ only in their drivers' types.)
macro_rules! copy_tables {
    ($src:expr, $tx:expr, $tables:expr) => {{
        let mut total = 0u64;
        for t in $tables {
            let count = format!("SELECT COUNT(*) FROM {}", t.name);
            let there: i64 = sqlx::query_scalar(AssertSqlSafe(count.clone()))
                .fetch_one(&mut *$tx)
                .await?;
            refuse_rows(t.name, there)?;
            let here: i64 = sqlx::query_scalar(AssertSqlSafe(count))
                .fetch_one($src)
                .await?;
            total += here as u64;
        }
        let bar = progress(total);
        for t in $tables {
            bar.set_message(t.name);
            let insert = t.insert();
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {} FROM {}",
                t.names(),
                t.name
            )))
            .fetch_all($src)
            .await
            .with_context(|| format!("cannot read {} from the source", t.name))?;
            for row in &rows {
                let cells = cells!(row, t);
                bind_all!(sqlx::query(AssertSqlSafe(insert.clone())), cells)
                    .execute(&mut *$tx)
                    .await
                    .with_context(|| format!("cannot write a row of {}", t.name))?;
                bar.inc(1);
            }
        }
        bar.finish_with_message("done");
        total
    }};
}

async fn to_postgres(src: &sqlx::SqlitePool, dst: &PgPool) -> anyhow::Result<u64> {
    let mut tx = dst
        .begin()
        .await
        .context("cannot start a transaction on the target")?;
    let tables = schema(&mut tx).await?;
    let total = copy_tables!(src, tx, &tables);
    // The change feed, the audit log and the queues continue from where the source left off.
    for t in SEQUENCES {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{t}', 'seq'), GREATEST((SELECT COALESCE(MAX(seq), 0) FROM {t}), 1))"
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await.context("cannot commit the copy")?;
    Ok(total)
}

async fn to_sqlite(src: &PgPool, dst: &sqlx::SqlitePool) -> anyhow::Result<u64> {
    let tables = schema(&mut *src.acquire().await?).await?;
    let mut tx = dst
        .begin()
        .await
        .context("cannot start a transaction on the target")?;
    let total = copy_tables!(src, tx, &tables);
    tx.commit().await.context("cannot commit the copy")?;
    Ok(total)
}
