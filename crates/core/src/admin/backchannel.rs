//! An app's back-channel logout URI (OpenID Connect Back-Channel Logout 1.0
//! §2.2), under the redirect-URI policy (https on a public DNS name; the
//! development mode's loopback allowance), and the app's recent deliveries.

use crate::backchannel::{BackchannelLogout, LogoutDelivery};
use crate::clock::UnixTime;
use crate::model::{Actor, AuditEvent, GrantType};
use crate::ports::Store;
use crate::redirect_uri::RedirectPolicy;

use super::{AdminError, app, invalid};

/// The field the policy names in its refusals.
pub const FIELD: &str = "backchannel_logout_uri";

/// What to change: `uri` `Some("")` removes the registration; `None` keeps it.
#[derive(Debug, Clone, Default)]
pub struct BackchannelEdit {
    pub uri: Option<String>,
    pub session_required: Option<bool>,
}

impl BackchannelEdit {
    pub fn is_empty(&self) -> bool {
        self.uri.is_none() && self.session_required.is_none()
    }
}

/// With back-channel logout turned off (`serve --backchannel-logout=false`), a
/// new or changed logout URI is refused: an admin who registers one expects
/// logouts, and a registration accepted but inert would hide that none are
/// sent (RFC 7591 §2 lets a server refuse metadata it does not support).
/// Removing one, or re-posting the one already kept (a form sends every
/// field), is still allowed; kept registrations work again once it is on.
pub fn refuse_when_off(
    enabled: bool,
    current: Option<&BackchannelLogout>,
    edit: &BackchannelEdit,
) -> Result<(), AdminError> {
    match edit.uri.as_deref() {
        Some(u) if !enabled && !u.is_empty() && current.is_none_or(|c| c.uri != u) => Err(invalid(
            FIELD,
            "back-channel logout is turned off on this server (serve --backchannel-logout=false)",
        )),
        _ => Ok(()),
    }
}

/// The app's registration, if the actor may see the app.
pub async fn backchannel_logout(
    store: &dyn Store,
    actor: &Actor,
    client_id: &str,
) -> Result<Option<BackchannelLogout>, AdminError> {
    let a = app(store, actor, client_id).await?;
    Ok(store.backchannel_logout(&a.client_id).await?)
}

/// Applies `edit`; returns the registration as it is now.
pub async fn set_backchannel_logout(
    store: &dyn Store,
    now: UnixTime,
    policy: &RedirectPolicy,
    actor: &Actor,
    client_id: &str,
    edit: BackchannelEdit,
) -> Result<Option<BackchannelLogout>, AdminError> {
    let a = app(store, actor, client_id).await?;
    let current = store.backchannel_logout(&a.client_id).await?;
    if edit.is_empty() {
        return Ok(current);
    }
    let uri = match edit.uri {
        Some(u) if u.is_empty() => None,
        Some(u) => {
            if !a.allows(GrantType::AuthorizationCode) {
                return Err(invalid(
                    FIELD,
                    "only authorization code apps sign people in (and out)",
                ));
            }
            let mut checked = policy.check(FIELD, vec![u]).await?;
            checked.pop()
        }
        None => current.as_ref().map(|c| c.uri.clone()),
    };
    let next = match uri {
        Some(uri) => Some(BackchannelLogout {
            uri,
            session_required: edit
                .session_required
                .or(current.as_ref().map(|c| c.session_required))
                .unwrap_or(false),
        }),
        None if edit.session_required == Some(true) => {
            return Err(invalid(
                "backchannel_logout_session_required",
                "needs a backchannel_logout_uri",
            ));
        }
        None => None,
    };
    if next == current {
        return Ok(current);
    }
    let detail = match &next {
        Some(n) => format!(
            "`{}` back-channel logout URI set to `{}` (session required: {})",
            a.name, n.uri, n.session_required
        ),
        None => format!("`{}` back-channel logout URI removed", a.name),
    };
    let audit = AuditEvent::new(
        actor,
        &a.org_id,
        now,
        "app.backchannel_logout",
        &a.client_id,
        detail,
    );
    store
        .set_backchannel_logout(&a.client_id, next.as_ref(), &audit)
        .await?;
    Ok(next)
}

/// The app's most recent deliveries (at most `limit`, newest first).
pub async fn logout_deliveries(
    store: &dyn Store,
    actor: &Actor,
    client_id: &str,
    limit: u32,
) -> Result<Vec<LogoutDelivery>, AdminError> {
    let a = app(store, actor, client_id).await?;
    Ok(store
        .logout_deliveries(&a.client_id, limit.min(100))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turned_off_a_new_uri_is_refused_but_removing_or_keeping_one_is_not() {
        let kept = BackchannelLogout {
            uri: "https://a.test/bc".into(),
            session_required: false,
        };
        let edit = |u: &str| BackchannelEdit {
            uri: Some(u.into()),
            session_required: None,
        };
        assert!(refuse_when_off(false, None, &edit("https://b.test/bc")).is_err());
        assert!(refuse_when_off(false, Some(&kept), &edit("https://b.test/bc")).is_err());
        assert!(refuse_when_off(false, Some(&kept), &edit("https://a.test/bc")).is_ok());
        assert!(refuse_when_off(false, Some(&kept), &edit("")).is_ok());
        assert!(refuse_when_off(false, None, &BackchannelEdit::default()).is_ok());
        assert!(refuse_when_off(true, None, &edit("https://b.test/bc")).is_ok());
    }
}
