//! The organization's audit log.

use super::{AdminError, authorized};
use crate::model::{Actor, AuditEvent, Org};
use crate::ports::Store;

/// The organization's audit log, newest first.
pub async fn audit_log(
    store: &dyn Store,
    actor: &Actor,
    org: &Org,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEvent>, AdminError> {
    authorized(actor, org)?;
    Ok(store
        .audit_events(&org.id, before, limit.clamp(1, 500))
        .await?)
}
