use gatehouse_core::admin;
use gatehouse_core::model::Actor;
use gatehouse_core::ports::Store;
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
    let events = admin::audit_log(store, &actor, &o.id, before, limit).await?;
    let docs: Vec<Value> = events
        .iter()
        .map(serde_json::to_value)
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
