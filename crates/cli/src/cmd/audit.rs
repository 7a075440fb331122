use gatehouse_core::admin;
use gatehouse_core::model::Actor;
use gatehouse_core::ports::Store;
use gatehouse_server::admin_api::dto::AuditEventView;
use serde_json::Value;

use crate::output::Out;

pub async fn run(
    store: &dyn Store,
    org: &str,
    limit: u32,
    before: Option<i64>,
    out: &Out,
) -> anyhow::Result<()> {
    let actor = Actor::operator();
    let o = admin::org(store, &actor, org).await?;
    let events = admin::audit_log(store, &actor, &o, before, limit).await?;
    // The admin API's event view; a list, as every CLI listing is.
    let docs: Vec<Value> = events
        .iter()
        .cloned()
        .map(|e| serde_json::to_value(AuditEventView::from(e)))
        .collect::<Result<_, _>>()?;
    out.print(&Value::Array(docs), || {
        events
            .iter()
            .map(|e| {
                format!(
                    "{}\t{}\t{} ({}, {})\t{}\t{}",
                    e.seq,
                    e.at,
                    e.actor_name,
                    e.actor_kind.as_str(),
                    e.address,
                    e.action,
                    e.detail
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
