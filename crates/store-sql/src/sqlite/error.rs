//! sqlx errors to [`StoreError`]: what a caller can act on (not found, conflict,
//! retry later) is told apart; the rest is internal.

use gatehouse_core::ports::StoreError;

pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return StoreError::Conflict(unique_target(db.message()));
            }
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes, and
            // SQLITE_FULL (13): the disk is full, so retry once space returns.
            let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            if matches!(code & 0xff, 5 | 6 | 13) {
                return StoreError::Unavailable(db.message().to_owned());
            }
            StoreError::Internal(db.message().to_owned())
        }
        other => StoreError::Internal(other.to_string()),
    }
}

/// "UNIQUE constraint failed: users.email" → "users.email".
fn unique_target(msg: &str) -> String {
    msg.rsplit(": ").next().unwrap_or(msg).to_owned()
}
