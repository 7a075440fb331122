use std::io::BufRead;

use anyhow::Context;
use gatehouse_core::admin::{self, NewUser};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::Actor;
use gatehouse_core::model::{User, UserStatus};
use gatehouse_core::ports::Store;
use gatehouse_server::admin_api::dto::UserView;
use serde_json::Value;

use crate::cli::UserCmd;
use crate::output::Out;

/// A user as the admin API shows one.
fn doc(u: &User) -> Value {
    serde_json::to_value(UserView::from(u.clone())).unwrap_or_default()
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
            profile,
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
            let o = admin::org(store, &Actor::operator(), &org).await?;
            let user = admin::create_user(
                store,
                now,
                &Actor::operator(),
                NewUser {
                    org: &o,
                    email: &email,
                    name: name.as_deref(),
                    role: &role,
                    groups,
                    password: password.as_deref(),
                    profile: profile.edit(None),
                },
            )
            .await?;
            out.print(&doc(&user), || {
                format!(
                    "created user {} ({}) with role {}",
                    user.email, user.id, user.role
                )
            });
        }
        UserCmd::Invite {
            resend: true,
            org,
            email,
            issuer,
            ..
        } => {
            let actor = Actor::operator();
            let user = admin::user_by_email(store, &actor, &email, Some(&org)).await?;
            let how = "with a link for the operator to pass on";
            let (user, token, link) =
                admin::resend_invitation(store, now, &actor, &user.id, how).await?;
            let url = set_password_url(&issuer, &token);
            let d = serde_json::json!({ "user": doc(&user), "link": url, "expires_at": link.expires_at });
            out.print(&d, || {
                format!(
                    "invited {} ({}) again; their earlier link no longer works. Pass this one on (it works once, for 72 hours):\n{url}",
                    user.email, user.id
                )
            });
        }
        UserCmd::Invite {
            resend: false,
            org,
            email,
            role,
            name,
            groups,
            issuer,
        } => {
            let o = admin::org(store, &Actor::operator(), &org).await?;
            let new = NewUser {
                org: &o,
                email: &email,
                name: name.as_deref(),
                role: &role,
                groups,
                password: None,
                profile: Default::default(),
            };
            let (user, link, expires_at) = invite(store, now, new, &issuer).await?;
            let d =
                serde_json::json!({ "user": doc(&user), "link": link, "expires_at": expires_at });
            out.print(&d, || {
                format!(
                    "invited {} ({}); pass this link on (it sets their password, works once, for 72 hours):\n{link}",
                    user.email, user.id
                )
            });
        }
        UserCmd::List { org } => {
            let o = admin::org(store, &Actor::operator(), &org).await?;
            let users = store.list_users(&o.id).await?;
            out.print(&Value::Array(users.iter().map(doc).collect()), || {
                users
                    .iter()
                    .map(|u| format!("{}\t{}\t{}\t{}", u.email, u.id, u.role, u.status.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
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
        UserCmd::SetProfile {
            email,
            org,
            name,
            profile,
        } => {
            let actor = Actor::operator();
            let user = admin::user_by_email(store, &actor, &email, org.as_deref()).await?;
            let edit = profile.edit(name);
            let user = admin::update_user_profile(store, now, &actor, &user.id, &edit).await?;
            out.print(&doc(&user), || {
                format!("updated the profile of user {}", user.email)
            });
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
            out.print(&doc(&user), || {
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
    out.print(&doc(&user), || {
        format!("user {} is now {}", user.email, status.as_str())
    });
    Ok(())
}

/// Makes the user and their invitation link (stored as a digest, audited).
async fn invite(
    store: &dyn Store,
    now: UnixTime,
    new: NewUser<'_>,
    issuer: &str,
) -> anyhow::Result<(User, String, UnixTime)> {
    use gatehouse_core::mail_link::{self, LinkPurpose};
    let org_id = new.org.id.clone();
    let user = admin::create_user(store, now, &Actor::operator(), new).await?;
    let (token, link) = mail_link::issue(&user.id, LinkPurpose::Invite, now);
    let audit = gatehouse_core::model::AuditEvent::new(
        &Actor::operator(),
        &org_id,
        now,
        gatehouse_server::password::links::INVITED,
        &user.id,
        format!(
            "invited `{}` with a link for the operator to pass on",
            user.email
        ),
    );
    store.insert_mail_link(&link, &audit).await?;
    Ok((user, set_password_url(issuer, &token), link.expires_at))
}

/// The link that opens the set-password page with `token`.
fn set_password_url(issuer: &str, token: &str) -> String {
    format!(
        "{}{}?token={token}",
        issuer.trim_end_matches('/'),
        gatehouse_server::password::SET_PATH
    )
}
