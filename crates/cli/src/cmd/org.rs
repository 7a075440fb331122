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
        OrgCmd::Update {
            slug,
            require_mfa,
            no_require_mfa,
            require_mfa_roles,
        } => {
            let actor = Actor::operator();
            let org = admin::org(store, &actor, &slug).await?;
            let roles = match require_mfa_roles {
                Some(roles) => {
                    let roles: Vec<String> = roles.into_iter().filter(|r| !r.is_empty()).collect();
                    admin::set_mfa_roles(store, now, &actor, &org, &roles).await?
                }
                None => admin::mfa_roles(store, &actor, &org).await?,
            };
            let required = match (require_mfa, no_require_mfa) {
                (true, _) => admin::set_requires_mfa(store, now, &actor, &org, true).await?,
                (_, true) => admin::set_requires_mfa(store, now, &actor, &org, false).await?,
                _ => admin::requires_mfa(store, &actor, &org).await?,
            };
            let view = serde_json::json!({
                "id": org.id,
                "slug": org.slug,
                "require_mfa": required,
                "require_mfa_roles": roles,
            });
            out.print(&view, || {
                let of_roles = if roles.is_empty() {
                    String::new()
                } else {
                    format!(" (always of the roles {})", roles.join(", "))
                };
                format!(
                    "organization {}: second factor {}{of_roles}",
                    org.slug,
                    if required { "required" } else { "not required" }
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
