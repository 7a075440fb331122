use std::net::SocketAddr;

use gatehouse_core::admin::{self, AppEdit, BackchannelEdit, NewApp};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::Actor;
use gatehouse_core::model::{App, AppStatus, ClientKeys, GrantType};
use gatehouse_core::ports::{Store, StoreError};
use gatehouse_server::admin_api::dto::{
    AddedSecret, AppView, LogoutDeliveryList, LogoutDeliveryView, NewSecret, OnBehalfOfChanged,
    RegisteredApp, SECRET_WARNING, SecretView, TOKENS_ENDED,
};
use gatehouse_server::dns::redirect_policy;
use serde_json::{Value, json};

use crate::cli::{AppCmd, GrantArg};
use crate::output::Out;

/// An app as the admin API shows one (never its secret), with its on-behalf
/// user's email and its active secrets' ids.
async fn view(store: &dyn Store, now: UnixTime, a: &App) -> anyhow::Result<AppView> {
    let users = match &a.on_behalf_of {
        Some(id) => match store.user_by_id(id).await {
            Ok(u) => vec![u],
            Err(StoreError::NotFound) => vec![],
            Err(e) => return Err(e.into()),
        },
        None => vec![],
    };
    let secrets = admin::active_secrets(store, now, &Actor::operator(), &a.client_id).await?;
    let bc = store.backchannel_logout(&a.client_id).await?;
    Ok(AppView::new(a.clone(), &users)
        .with_secrets(secrets)
        .with_backchannel(bc))
}

/// The JWKS in `path` (bounded), for `--jwks-file`.
fn read_jwks(path: Option<std::path::PathBuf>) -> anyhow::Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    let meta = std::fs::metadata(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let max = gatehouse_core::client_assertion::MAX_JWKS_BYTES;
    if meta.len() > max as u64 {
        anyhow::bail!("{} is larger than {max} bytes: not a JWKS", path.display());
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(Some(text))
}

async fn doc(store: &dyn Store, now: UnixTime, a: &App) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(view(store, now, a).await?)?)
}

pub async fn run(
    store: &dyn Store,
    now: UnixTime,
    cmd: AppCmd,
    out: &Out,
    dev: bool,
    dns_server: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let cmd_is_disable = matches!(cmd, AppCmd::Disable { .. });
    match cmd {
        AppCmd::Register {
            org,
            name,
            description,
            grant,
            on_behalf_of,
            scopes,
            default_scopes,
            audience,
            redirect_uris,
            post_logout_redirect_uris,
            require_pkce,
            require_par,
            require_dpop,
            exchange_audiences,
            auth_method,
            jwks_file,
            jwks_uri,
            backchannel_logout_uri,
            backchannel_logout_session_required,
        } => {
            // The same policy `serve` applies (its --dev and --dns-server).
            let policy = redirect_policy(dev, dns_server)?;
            if backchannel_logout_uri.is_none() && backchannel_logout_session_required == Some(true)
            {
                anyhow::bail!(
                    "backchannel_logout_session_required: needs a backchannel_logout_uri"
                );
            }
            if let Some(uri) = &backchannel_logout_uri {
                // Refused before anything is stored.
                if !matches!(grant, GrantArg::AuthorizationCode) {
                    anyhow::bail!(
                        "backchannel_logout_uri: only authorization code apps sign people in (and out)"
                    );
                }
                policy
                    .check(admin::BACKCHANNEL_FIELD, vec![uri.clone()])
                    .await?;
            }
            let o = admin::org(store, &Actor::operator(), &org).await?;
            let keys =
                admin::requested_keys(auth_method.as_deref(), read_jwks(jwks_file)?, jwks_uri)?;
            let new = NewApp {
                org: &o,
                name: &name,
                description: description.as_deref(),
                grant: match grant {
                    GrantArg::ClientCredentials => GrantType::ClientCredentials,
                    GrantArg::AuthorizationCode => GrantType::AuthorizationCode,
                    GrantArg::TokenExchange => GrantType::TokenExchange,
                    GrantArg::DeviceCode => GrantType::DeviceCode,
                },
                on_behalf_of: on_behalf_of.as_deref(),
                redirect_uris,
                post_logout_redirect_uris,
                scopes: &scopes,
                default_scopes: default_scopes.as_deref(),
                audience: audience.as_deref(),
                exchange_audiences,
            };
            let operator = Actor::operator();
            let (mut app, secret) = match keys {
                Some(keys) => (
                    admin::register_key_app(store, now, &policy, &operator, new, keys).await?,
                    None,
                ),
                None => {
                    let (app, secret) =
                        admin::register_app(store, now, &policy, &operator, new).await?;
                    (app, Some(secret))
                }
            };
            let pkce = require_pkce.filter(|r| *r != app.require_pkce);
            let par = require_par.filter(|r| *r != app.require_par);
            let dpop = require_dpop.filter(|r| *r != app.require_dpop);
            if pkce.is_some() || par.is_some() || dpop.is_some() {
                let edit = AppEdit {
                    require_pkce: pkce,
                    require_par: par,
                    require_dpop: dpop,
                    ..AppEdit::default()
                };
                app = admin::update_app(
                    store,
                    now,
                    &policy,
                    &Actor::operator(),
                    &app.client_id,
                    edit,
                )
                .await?;
            }
            admin::set_backchannel_logout(
                store,
                now,
                &policy,
                &Actor::operator(),
                &app.client_id,
                BackchannelEdit {
                    uri: backchannel_logout_uri,
                    session_required: backchannel_logout_session_required,
                },
            )
            .await?;
            let registered = RegisteredApp {
                app: view(store, now, &app).await?,
                client_secret: secret.as_ref().map(|s| s.expose().to_owned()),
                warning: secret.is_some().then_some(SECRET_WARNING),
            };
            out.print(&serde_json::to_value(registered)?, || match &secret {
                Some(secret) => format!(
                    "registered app {}\n  client_id:     {}\n  client_secret: {}\nStore the secret now: it is not shown again.",
                    app.name,
                    app.client_id,
                    secret.expose()
                ),
                None => format!(
                    "registered app {}\n  client_id:     {}\nIt has no secret: it authenticates with private_key_jwt (a JWT signed with its key).",
                    app.name, app.client_id
                ),
            });
        }
        AppCmd::RotateSecret { client_id } => {
            let secret = admin::rotate_secret(store, now, &Actor::operator(), &client_id).await?;
            let shown = NewSecret {
                client_id: client_id.clone(),
                client_secret: secret.expose().to_owned(),
                warning: SECRET_WARNING,
                tokens_ended: TOKENS_ENDED,
            };
            out.print(&serde_json::to_value(shown)?, || {
                format!("new client_secret: {}\nEvery token issued before now has ended. The secret is not shown again.", secret.expose())
            });
        }
        AppCmd::AddSecret {
            client_id,
            expires_in,
        } => {
            let operator = Actor::operator();
            let (added, value) =
                admin::add_secret(store, now, &operator, &client_id, expires_in).await?;
            let secrets = admin::active_secrets(store, now, &operator, &client_id).await?;
            let shown = AddedSecret {
                client_id: client_id.clone(),
                secret_id: added.id.clone(),
                client_secret: value.expose().to_owned(),
                warning: SECRET_WARNING,
                secrets: secrets.into_iter().map(SecretView::from).collect(),
            };
            let old = match expires_in {
                Some(s) => format!("The other secret stops working in {s} s."),
                None => "The other secret works until `gatehouse app retire-secret`.".to_owned(),
            };
            out.print(&serde_json::to_value(shown)?, || {
                format!(
                    "added secret {}\n  client_secret: {}\n{old} Tokens issued so far stay valid. The secret is not shown again.",
                    added.id,
                    value.expose()
                )
            });
        }
        AppCmd::RetireSecret {
            client_id,
            secret_id,
        } => {
            admin::retire_secret(store, now, &Actor::operator(), &client_id, &secret_id).await?;
            out.print(
                &json!({"client_id": client_id, "retired": secret_id}),
                || format!("retired secret {secret_id} of app {client_id}; the tokens issued with it have ended"),
            );
        }
        AppCmd::SetOnBehalfOf { client_id, user } => {
            let app =
                admin::set_on_behalf_of(store, now, &Actor::operator(), &client_id, &user).await?;
            let changed = OnBehalfOfChanged {
                app: view(store, now, &app).await?,
                tokens_ended: TOKENS_ENDED,
            };
            out.print(&serde_json::to_value(changed)?, || {
                format!("app {client_id} now acts on behalf of {user}; earlier tokens have ended")
            });
        }
        AppCmd::Show { client_id } => {
            let app = admin::app(store, &Actor::operator(), &client_id).await?;
            let d = doc(store, now, &app).await?;
            out.print(&d, || serde_json::to_string_pretty(&d).unwrap_or_default());
        }
        AppCmd::List { org } => {
            let o = admin::org(store, &Actor::operator(), &org).await?;
            let mut docs = Vec::new();
            for a in store.apps_for_org(&o.id).await? {
                docs.push(doc(store, now, &a).await?);
            }
            let human = docs
                .iter()
                .map(|d| {
                    format!(
                        "{}\t{}\t{}",
                        d["client_id"].as_str().unwrap_or(""),
                        d["grant_type"].as_str().unwrap_or(""),
                        d["name"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            out.print(&Value::Array(docs), || human);
        }
        AppCmd::Update {
            client_id,
            name,
            description,
            redirect_uris,
            post_logout_redirect_uris,
            clear_post_logout_redirect_uris,
            scopes,
            default_scopes,
            audience,
            require_pkce,
            require_par,
            require_dpop,
            exchange_audiences,
            clear_exchange_audiences,
            jwks_file,
            jwks_uri,
            backchannel_logout_uri,
            backchannel_logout_session_required,
            clear_backchannel_logout_uri,
        } => {
            let edit = AppEdit {
                name: name.as_deref(),
                description: description
                    .as_deref()
                    .map(|d| Some(d).filter(|d| !d.is_empty())),
                redirect_uris: (!redirect_uris.is_empty()).then_some(redirect_uris),
                post_logout_redirect_uris: if clear_post_logout_redirect_uris {
                    Some(Vec::new())
                } else {
                    (!post_logout_redirect_uris.is_empty()).then_some(post_logout_redirect_uris)
                },
                scopes: scopes.as_deref(),
                default_scopes: default_scopes.as_deref(),
                default_audience: audience
                    .as_deref()
                    .map(|a| Some(a).filter(|a| !a.is_empty())),
                require_pkce,
                require_par,
                require_dpop,
                exchange_audiences: if clear_exchange_audiences {
                    Some(Vec::new())
                } else {
                    (!exchange_audiences.is_empty()).then_some(exchange_audiences)
                },
            };
            let policy = redirect_policy(dev, dns_server)?;
            let keys = match (read_jwks(jwks_file)?, jwks_uri) {
                (Some(j), _) => Some(ClientKeys::Jwks(j)),
                (None, Some(u)) => Some(ClientKeys::JwksUri(u)),
                (None, None) => None,
            };
            let operator = Actor::operator();
            let mut app =
                admin::update_app(store, now, &policy, &operator, &client_id, edit).await?;
            if let Some(keys) = keys {
                app = admin::set_client_keys(store, now, &policy, &operator, &client_id, keys)
                    .await?;
            }
            let backchannel = BackchannelEdit {
                uri: if clear_backchannel_logout_uri {
                    Some(String::new())
                } else {
                    backchannel_logout_uri
                },
                session_required: backchannel_logout_session_required,
            };
            admin::set_backchannel_logout(store, now, &policy, &operator, &client_id, backchannel)
                .await?;
            out.print(&doc(store, now, &app).await?, || {
                format!("updated app {client_id}")
            });
        }
        AppCmd::Disable { client_id } | AppCmd::Enable { client_id } => {
            let (status, said) = match cmd_is_disable {
                true => (
                    AppStatus::Disabled,
                    "disabled; every token it held has ended",
                ),
                false => (AppStatus::Active, "enabled"),
            };
            let app =
                admin::set_app_status(store, now, &Actor::operator(), &client_id, status).await?;
            out.print(&doc(store, now, &app).await?, || {
                format!("app {client_id} {said}")
            });
        }
        AppCmd::LogoutDeliveries { client_id } => {
            let list = admin::logout_deliveries(store, &Actor::operator(), &client_id, 50).await?;
            let shown = LogoutDeliveryList {
                deliveries: list.into_iter().map(LogoutDeliveryView::from).collect(),
            };
            let human = shown
                .deliveries
                .iter()
                .map(|d| {
                    format!(
                        "{}\t{}\tattempts={}\tlast_status={}\t{}",
                        d.seq,
                        d.status,
                        d.attempts,
                        d.last_status
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "-".into()),
                        d.last_error.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            out.print(&serde_json::to_value(shown)?, || human);
        }
        AppCmd::Delete { client_id } => {
            admin::delete_app(store, now, &Actor::operator(), &client_id).await?;
            out.print(&json!({"deleted": client_id}), || {
                format!("deleted app {client_id}; its tokens have ended")
            });
        }
    }
    Ok(())
}
