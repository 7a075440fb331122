use std::io::BufRead;

use anyhow::Context;
use gatehouse_core::admin::{self, NewUser};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::Actor;
use gatehouse_core::model::{User, UserStatus};
use gatehouse_core::ports::Store;
use serde_json::{Value, json};

use crate::cli::UserCmd;
use crate::output::Out;

fn doc(u: &User, org_slug: &str) -> Value {
    json!({"id": u.id, "email": u.email, "org": org_slug, "role": u.role, "groups": u.groups, "status": u.status.as_str(), "name": u.name})
}

pub async fn run(store: &dyn Store, now: UnixTime, cmd: UserCmd, out: &Out) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Create {
            org,
            email,
            role,
            name,
            groups,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let user = admin::create_user(
                store,
                now,
                &Actor::operator(),
                NewUser {
                    org_slug: &org,
                    email: &email,
                    name: name.as_deref(),
                    role: &role,
                    groups,
                    password: password.as_deref(),
                },
            )
            .await?;
            out.print(&doc(&user, &org), || {
                format!(
                    "created user {} ({}) with role {}",
                    user.email, user.id, user.role
                )
            });
        }
        UserCmd::List { org } => {
            let o = admin::org(store, &Actor::operator(), &org).await?;
            let users = store.list_users(&o.id).await?;
            out.print(
                &Value::Array(users.iter().map(|u| doc(u, &org)).collect()),
                || {
                    users
                        .iter()
                        .map(|u| {
                            format!("{}\t{}\t{}\t{}", u.email, u.id, u.role, u.status.as_str())
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        UserCmd::Deactivate { email, org } => {
            status(
                store,
                now,
                &email,
                org.as_deref(),
                UserStatus::Deactivated,
                out,
            )
            .await?
        }
        UserCmd::Activate { email, org } => {
            status(store, now, &email, org.as_deref(), UserStatus::Active, out).await?
        }
        UserCmd::SetRole {
            email,
            org,
            role,
            groups,
        } => {
            let actor = Actor::operator();
            let user = admin::user_by_email(store, &actor, &email, org.as_deref()).await?;
            let groups = groups
                .unwrap_or_else(|| user.groups.clone())
                .into_iter()
                .filter(|g| !g.trim().is_empty())
                .collect();
            let user = admin::set_user_access(store, now, &actor, &user.id, &role, groups).await?;
            let org = store.org_by_id(&user.org_id).await?;
            out.print(&doc(&user, &org.slug), || {
                format!(
                    "user {} now has role {} and groups [{}]",
                    user.email,
                    user.role,
                    user.groups.join(", ")
                )
            });
        }
    }
    Ok(())
}

async fn status(
    store: &dyn Store,
    now: UnixTime,
    email: &str,
    org: Option<&str>,
    status: UserStatus,
    out: &Out,
) -> anyhow::Result<()> {
    let actor = Actor::operator();
    let user = admin::user_by_email(store, &actor, email, org).await?;
    let user = admin::set_user_status(store, now, &actor, &user.id, status).await?;
    let org = store.org_by_id(&user.org_id).await?;
    out.print(&doc(&user, &org.slug), || {
        format!("user {} is now {}", user.email, status.as_str())
    });
    Ok(())
}
