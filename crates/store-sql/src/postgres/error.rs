//! sqlx errors to [`StoreError`]: what a caller can act on (not found, conflict,
//! retry later) is told apart; the rest is internal. PostgreSQL errors are told
//! apart by SQLSTATE.

use gatehouse_core::ports::StoreError;
use sqlx::postgres::PgDatabaseError;

pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        // Down, refused, dropped, pool exhausted or shut: retry later.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                let what = db
                    .try_downcast_ref::<PgDatabaseError>()
                    .and_then(unique_target)
                    .or_else(|| db.constraint().map(str::to_owned))
                    .unwrap_or_else(|| db.message().to_owned());
                return StoreError::Conflict(what);
            }
            let code = db.code().unwrap_or_default();
            if is_transient(&code) {
                return StoreError::Unavailable(format!("{} ({code})", db.message()));
            }
            StoreError::Internal(db.message().to_owned())
        }
        other => StoreError::Internal(other.to_string()),
    }
}

/// SQLSTATEs that say "not now" rather than "never".
fn is_transient(code: &str) -> bool {
    // Class 08: connection exceptions.
    code.starts_with("08")
        || matches!(
            code,
            // query_canceled: the statement timeout (or a cancel request).
            "57014"
            // admin_shutdown, crash_shutdown, cannot_connect_now (starting up or in recovery).
            | "57P01" | "57P02" | "57P03"
            // too_many_connections.
            | "53300"
            // serialization_failure, deadlock_detected: the transaction may be retried.
            | "40001" | "40P01"
        )
}

/// "Key (email)=(dev@acme.test) already exists." on table `users` → "users.email",
/// the same shape SQLite reports (and without the value, which may be a secret digest).
fn unique_target(db: &PgDatabaseError) -> Option<String> {
    let table = db.table()?;
    let detail = db.detail()?;
    let cols = detail.strip_prefix("Key (")?.split(")=(").next()?;
    Some(
        cols.split(", ")
            .map(|c| format!("{table}.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::is_transient;

    #[test]
    fn transient_sqlstates() {
        for code in ["08006", "08001", "57014", "57P01", "53300", "40P01"] {
            assert!(is_transient(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", ""] {
            assert!(!is_transient(code), "{code}");
        }
    }
}
