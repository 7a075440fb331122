use std::io::BufRead;

use anyhow::Context;
use gatehouse_core::admin;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::Actor;
use gatehouse_core::ports::Store;
use gatehouse_server::admin_api::dto::OrgView;

use crate::cli::{IdpCmd, OrgCmd};
use crate::db;
use crate::output::Out;

pub async fn run(
    store: &dyn Store,
    now: UnixTime,
    cmd: OrgCmd,
    out: &Out,
    dev: bool,
) -> anyhow::Result<()> {
    match cmd {
        OrgCmd::IdentityProvider(c) => return identity_provider(store, now, c, out, dev).await,
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

/// `org identity-provider show|set|remove`.
async fn identity_provider(
    store: &dyn Store,
    now: UnixTime,
    cmd: IdpCmd,
    out: &Out,
    dev: bool,
) -> anyhow::Result<()> {
    let actor = Actor::operator();
    match cmd {
        IdpCmd::Show { slug } => {
            let org = admin::org(store, &actor, &slug).await?;
            match admin::upstream(store, &actor, &org).await? {
                Some(p) => print_provider(out, &org.slug, &p),
                None => anyhow::bail!("organization {slug} has no identity provider"),
            }
        }
        IdpCmd::Set {
            slug,
            issuer,
            client_id,
            client_secret_stdin,
            domains,
            allow_passwords,
            default_role,
            trust_upstream_mfa,
            kek,
        } => {
            let client_secret = if client_secret_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the client secret from standard input")?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let kek =
                db::key_encryption_key(kek.key_encryption_key.as_deref(), &kek.key_file, false)?;
            let org = admin::org(store, &actor, &slug).await?;
            let edit = admin::UpstreamEdit {
                issuer,
                client_id,
                client_secret,
                domains,
                allow_passwords: allow_passwords.unwrap_or(false),
                default_role,
                trust_upstream_mfa: trust_upstream_mfa.unwrap_or(false),
            };
            let p = admin::set_upstream(store, &kek, now, &actor, &org, edit, dev).await?;
            print_provider(out, &org.slug, &p);
        }
        IdpCmd::Remove { slug } => {
            let org = admin::org(store, &actor, &slug).await?;
            admin::remove_upstream(store, now, &actor, &org).await?;
            out.print(
                &serde_json::json!({"org": org.slug, "removed": true}),
                || {
                    format!(
                        "organization {}: identity provider removed; passwords sign in again",
                        org.slug
                    )
                },
            );
        }
    }
    Ok(())
}

fn print_provider(out: &Out, slug: &str, p: &gatehouse_core::upstream::UpstreamProvider) {
    let view = serde_json::json!({
        "org": slug,
        "issuer": p.issuer,
        "client_id": p.client_id,
        "domains": p.domains,
        "allow_passwords": p.allow_passwords,
        "default_role": p.default_role,
        "trust_upstream_mfa": p.trust_upstream_mfa,
        "updated_at": p.updated_at,
    });
    out.print(&view, || {
        format!(
            "organization {slug}: people of {} sign in through {} (client {}); local passwords {}; new people get role {}; its multi-factor sign-ins {}\nRegister <issuer of this Gatehouse>/upstream/callback as the redirect URI there.",
            p.domains.join(", "),
            p.issuer,
            p.client_id,
            if p.allow_passwords { "allowed" } else { "refused" },
            p.default_role,
            if p.trust_upstream_mfa { "count as multi-factor here" } else { "not trusted as multi-factor" },
        )
    });
}
