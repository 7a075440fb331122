//! Opening the store named by `--database-url`, and the key-encryption key.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use gatehouse_core::jose::KeyEncryptionKey;
use gatehouse_core::ports::Store;
use gatehouse_store_sql::{PgOptions, PgStore, SqliteOptions, SqliteStore};

/// Tuning for whichever backend the URL names.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub sqlite_busy_timeout: Duration,
    pub pg_max_connections: u32,
    pub pg_statement_timeout: Duration,
    pub pg_acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            sqlite_busy_timeout: Duration::from_secs(5),
            pg_max_connections: 4,
            pg_statement_timeout: Duration::from_secs(5),
            pg_acquire_timeout: Duration::from_secs(3),
        }
    }
}

pub async fn open(url: &str, opts: &DbOptions) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(open_sqlite(url, opts).await?));
    }
    if is_postgres(url) {
        return Ok(Arc::new(open_postgres(url, opts).await?));
    }
    bail!(
        "unsupported --database-url {}: expected sqlite://PATH or postgres://…",
        redact(url)
    )
}

pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

pub async fn open_sqlite(url: &str, opts: &DbOptions) -> anyhow::Result<SqliteStore> {
    create_private(url)?;
    SqliteStore::open(
        url,
        SqliteOptions {
            busy_timeout: opts.sqlite_busy_timeout,
            ..SqliteOptions::default()
        },
    )
    .await
    .with_context(|| format!("cannot open the database {}", redact(url)))
}

pub async fn open_postgres(url: &str, opts: &DbOptions) -> anyhow::Result<PgStore> {
    PgStore::open(
        url,
        PgOptions {
            max_connections: opts.pg_max_connections,
            statement_timeout: opts.pg_statement_timeout,
            acquire_timeout: opts.pg_acquire_timeout,
            schema: None,
        },
    )
    .await
    .with_context(|| format!("cannot open the database {}", redact(url)))
}

/// The file a `sqlite:` URL names; `None` for an in-memory database or another backend.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if !url.starts_with("sqlite:") {
        return None;
    }
    let connect = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = connect.get_filename();
    (!path.as_os_str().is_empty() && path.as_os_str() != ":memory:").then(|| path.to_path_buf())
}

/// Refuses a SQLite database that does not exist yet: only `serve`, `migrate`
/// and `restore` make one, so that an admin command run from the wrong
/// directory says so instead of working on a new, empty database.
pub fn require_existing(url: &str) -> anyhow::Result<()> {
    match sqlite_path(url) {
        Some(path) if !path.exists() => bail!(
            "no database at {} (--database-url {}): `gatehouse serve` or `gatehouse migrate` creates it; \
             run this command where the server runs, or give the server's --database-url (or GATEHOUSE_DATABASE_URL)",
            path.display(),
            redact(url)
        ),
        _ => Ok(()),
    }
}

/// Creates a missing SQLite file readable by its owner only, before SQLite
/// would create it with the umask's (usually world-readable) mode. SQLite gives
/// its `-wal` and `-shm` files the database file's mode. An existing file is
/// left as the operator made it.
fn create_private(url: &str) -> anyhow::Result<()> {
    use std::str::FromStr;
    let Ok(connect) = sqlx::sqlite::SqliteConnectOptions::from_str(url) else {
        return Ok(()); // SqliteStore::open says what is wrong with it
    };
    let path = connect.get_filename();
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" || path.exists() {
        return Ok(());
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        // An empty file is an empty SQLite database.
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("cannot create the database file {}", path.display()))
        }
    }
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The key that seals signing keys: given directly, or read from (or first
/// written to) a file only the owner can read.
pub fn key_encryption_key(
    direct: Option<&str>,
    file: &Path,
    create: bool,
) -> anyhow::Result<KeyEncryptionKey> {
    if let Some(text) = direct {
        return KeyEncryptionKey::from_text(text)
            .context("GATEHOUSE_KEY_ENCRYPTION_KEY must be 32 bytes in base64url");
    }
    if file.exists() {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read key file {}", file.display()))?;
        return KeyEncryptionKey::from_text(&text)
            .with_context(|| format!("key file {} does not hold a valid key", file.display()));
    }
    if !create {
        bail!(
            "key file {} not found: point --key-file (or GATEHOUSE_KEY_ENCRYPTION_KEY) at the server's key",
            file.display()
        );
    }
    let text = KeyEncryptionKey::generate_text();
    // Write aside, then link into place: two instances starting together on a
    // fresh installation end up with one key, never a half-written file.
    let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot create key file {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    let linked = std::fs::hard_link(&tmp, file);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            eprintln!(
                "created key-encryption key {} (back it up with the database: signing keys cannot be opened without it)",
                file.display()
            );
            KeyEncryptionKey::from_text(&text).context("generated key is invalid")
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            key_encryption_key(None, file, false)
        }
        Err(e) => Err(e).with_context(|| format!("cannot create key file {}", file.display())),
    }
}
#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
