//! A claimed pushed request (RFC 9126), carried through the sign-in and consent
//! forms. The `request_uri` works once, so the steps after the first cannot look
//! it up again; instead the first step seals the request's parameters
//! (AES-256-GCM under the key-encryption key, bound to the app and a deadline
//! [`TTL`] seconds away) into the forms' hidden `request` field. Any instance can
//! open it, nothing is stored, and the browser can neither read nor change it,
//! so an app that requires pushed requests still gets only what it pushed. Only
//! the forms' POSTs (CSRF-checked) accept it, never the authorization URL.

use gatehouse_core::clock::UnixTime;
use serde::{Deserialize, Serialize};

use crate::state::AppState;

/// The hidden field's parameter that holds the sealed request.
pub const PARAM: &str = "gatehouse_pushed";
/// How long a person may take over signing in and consenting.
pub const TTL: UnixTime = 30 * 60;

#[derive(Serialize, Deserialize)]
struct Sealed {
    params: String,
    exp: UnixTime,
}

fn aad(client_id: &str) -> String {
    format!("gatehouse-pushed-request:{client_id}")
}

/// What the forms carry for `client_id`'s claimed request `params`: the
/// `request` field's value (`client_id` and the sealed parameters).
pub fn carry(state: &AppState, client_id: &str, params: &str, now: UnixTime) -> Option<String> {
    let plain = serde_json::to_vec(&Sealed {
        params: params.to_owned(),
        exp: now + TTL,
    })
    .ok()?;
    let sealed = state.kek().seal(&aad(client_id), &plain).ok()?;
    Some(field(client_id, &sealed))
}

/// The `request` field that carries `sealed` for `client_id`.
pub fn field(client_id: &str, sealed: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair(PARAM, sealed)
        .finish()
}

/// The parameters sealed in `sealed` for `client_id`, if it opens and is live.
pub fn open(state: &AppState, client_id: &str, sealed: &str, now: UnixTime) -> Option<String> {
    let plain = state.kek().open(&aad(client_id), sealed).ok()?;
    let s: Sealed = serde_json::from_slice(&plain).ok()?;
    (s.exp > now).then_some(s.params)
}
