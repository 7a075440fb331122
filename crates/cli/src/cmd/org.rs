use gatehouse_core::admin;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::Actor;
use gatehouse_core::ports::Store;
use gatehouse_server::admin_api::dto::OrgView;

use crate::cli::OrgCmd;
use crate::output::Out;

pub async fn run(store: &dyn Store, now: UnixTime, cmd: OrgCmd, out: &Out) -> anyhow::Result<()> {
    match cmd {
        OrgCmd::Create { name, slug } => {
            let org =
                admin::create_org(store, now, &Actor::operator(), &name, slug.as_deref()).await?;
            out.print(&serde_json::to_value(OrgView::from(org.clone()))?, || {
                format!(
                    "created organization {} ({}) with roles admin, developer, member",
                    org.slug, org.id
                )
            });
        }
        OrgCmd::List => {
            let orgs = store.list_orgs().await?;
            let views: Vec<OrgView> = orgs.iter().cloned().map(OrgView::from).collect();
            out.print(&serde_json::to_value(views)?, || {
                orgs.iter()
                    .map(|o| format!("{}\t{}\t{}", o.slug, o.id, o.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}
