//! `gatehouse backup --to FILE` and `gatehouse restore --from FILE` for SQLite
//! installations. A backup is SQLite's `VACUUM INTO`: one read transaction's
//! consistent snapshot, taken while servers keep writing (WAL), written aside
//! and renamed into place so that a crash never leaves a torn backup under the
//! final name. A restore checks and migrates a staged copy next to the target
//! and renames it over the target in one step. PostgreSQL has its own tools
//! (pg_dump / pg_restore, see docs/deploy.md); this module refuses it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use gatehouse_store_sql::{SqliteOptions, SqliteStore};
use serde_json::json;
use sqlx::Row;

use crate::db::{self, DbOptions};
use crate::output::Out;

const PG_HINT: &str = "backup and restore copy SQLite databases; for PostgreSQL use pg_dump and pg_restore (docs/deploy.md, \"Backups\")";
const KEY_NOTE: &str = "the signing keys inside are sealed with the key-encryption key (--key-file, default gatehouse.key, or GATEHOUSE_KEY_ENCRYPTION_KEY): keep it with the backup, the restored server needs the same key";

pub async fn backup(url: &str, to: &Path, out: &Out) -> anyhow::Result<()> {
    if db::is_postgres(url) {
        bail!(PG_HINT);
    }
    db::require_existing(url)?;
    if to.exists() {
        bail!(
            "{} already exists: a backup is written to a new file",
            to.display()
        );
    }
    let store = db::open_sqlite(url, &DbOptions::default()).await?;
    let partial = aside(to, "partial")?;
    // VACUUM INTO wants a missing or empty file: an empty one made private first,
    // so the copy is never readable by others, even for a moment.
    create_private(&partial)?;
    let written = sqlx::query("VACUUM INTO ?")
        .bind(partial.to_string_lossy().into_owned())
        .execute(store.pool())
        .await;
    store.close().await;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e).with_context(|| {
            format!(
                "cannot back up the database {} to {}",
                db::redact(url),
                to.display()
            )
        });
    }
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush {}", partial.display()))?;
    // A hard link never replaces a file that appeared meanwhile.
    let linked = std::fs::hard_link(&partial, to);
    let _ = std::fs::remove_file(&partial);
    linked.with_context(|| format!("cannot create {}", to.display()))?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    out.print(
        &json!({"backup": to.display().to_string(), "database": db::redact(url), "bytes": bytes}),
        || {
            format!(
                "backed up {} to {} ({bytes} bytes)",
                db::redact(url),
                to.display()
            )
        },
    );
    eprintln!("note: {KEY_NOTE}");
    Ok(())
}

pub async fn restore(url: &str, from: &Path, force: bool, out: &Out) -> anyhow::Result<()> {
    if db::is_postgres(url) {
        bail!(PG_HINT);
    }
    let Some(target) = db::sqlite_path(url) else {
        bail!(
            "restore needs a SQLite file: --database-url {} names none",
            db::redact(url)
        );
    };
    if !from.is_file() {
        bail!("no backup file {}", from.display());
    }
    let staged = aside(&target, "restoring")?;
    let result = stage(from, &staged, url, &target, force).await;
    if let Err(e) = result {
        remove_database(&staged);
        return Err(e);
    }
    // Stale journal files of the old database must not be applied to the new one.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    std::fs::rename(&staged, &target)
        .with_context(|| format!("cannot move the restored database to {}", target.display()))?;
    out.print(
        &json!({"restored": from.display().to_string(), "database": db::redact(url)}),
        || format!("restored {} into {}", from.display(), db::redact(url)),
    );
    eprintln!("note: {KEY_NOTE}");
    Ok(())
}

/// Copies the backup to `staged`, checks it, brings its schema up to date
/// (refusing one newer than this binary), and checks that the target may be
/// replaced.
async fn stage(
    from: &Path,
    staged: &Path,
    url: &str,
    target: &Path,
    force: bool,
) -> anyhow::Result<()> {
    create_private(staged)?;
    std::fs::copy(from, staged).with_context(|| format!("cannot read {}", from.display()))?;
    // `copy` gave the staged file the backup's mode; the database stays private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(staged, std::fs::Permissions::from_mode(0o600))?;
    }
    let staged_url = format!("sqlite://{}", staged.display());
    check_backup(&staged_url, from).await?;
    let store = SqliteStore::open(&staged_url, SqliteOptions::default())
        .await
        .with_context(|| format!("cannot restore {}", from.display()))?;
    store.close().await;
    // The last connection's close checkpoints the write-ahead log into the file.
    let wal = PathBuf::from(format!("{}-wal", staged.display()));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        bail!(
            "cannot restore {}: its migration did not finish writing",
            from.display()
        );
    }
    if target.exists() && !force {
        let rows = rows_in(url).await?;
        if rows > 0 {
            bail!(
                "{} already holds data ({rows} rows): pass --force to replace it (stop every server using it first)",
                db::redact(url)
            );
        }
    }
    Ok(())
}

/// A Gatehouse database, intact: SQLite's integrity check passes and it has a
/// migrations table.
async fn check_backup(url: &str, from: &Path) -> anyhow::Result<()> {
    use sqlx::Connection;
    use std::str::FromStr;
    let not_ours = || format!("{} is not a Gatehouse backup", from.display());
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    let mut conn = sqlx::SqliteConnection::connect_with(&opts)
        .await
        .with_context(not_ours)?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .with_context(not_ours)?;
    if integrity != "ok" {
        bail!("{} is damaged: {integrity}", from.display());
    }
    let migrations: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await
    .with_context(not_ours)?;
    conn.close().await.ok();
    if migrations == 0 {
        bail!(not_ours());
    }
    Ok(())
}

/// How many rows the database's tables hold (its migration records aside).
async fn rows_in(url: &str) -> anyhow::Result<i64> {
    use sqlx::Connection;
    use std::str::FromStr;
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?.read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts)
        .await
        .with_context(|| format!("cannot open the database {}", db::redact(url)))?;
    let tables = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table'
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut rows = 0;
    for t in tables {
        let name: String = t.try_get(0)?;
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM \"{}\"",
            name.replace('"', "\"\"")
        )))
        .fetch_one(&mut conn)
        .await?;
        rows += n;
    }
    conn.close().await.ok();
    Ok(rows)
}

/// A name beside `path` for a file being written.
fn aside(path: &Path, what: &str) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    Ok(path.with_file_name(format!(
        ".{}.{what}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

fn create_private(path: &Path) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map(drop)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn remove_database(path: &Path) {
    let _ = std::fs::remove_file(path);
    for suffix in ["-wal", "-shm", "-changes"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
