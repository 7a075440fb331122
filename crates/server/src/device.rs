//! The browser a request comes from, as a session records it at sign-in: its
//! `User-Agent` and its client address ([`ClientAddr`]: behind trusted proxies,
//! the client's). A layer makes both current for the request (a task-local,
//! as [`crate::request_id`] does), so every sign-in path — password, second
//! factor, passkey, identity provider — records them through
//! [`crate::session::start_with`] without each handler passing headers down.
//! What is stored is bounded by [`gatehouse_core::account::bounded_user_agent`];
//! it is shown only to the person on `/account`.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::client_addr::ClientAddr;
use crate::state::AppState;

/// Where the current request comes from.
#[derive(Debug, Clone)]
pub struct Device {
    /// The raw header (a cheap clone); bounded only when stored.
    user_agent: Option<HeaderValue>,
    pub address: IpAddr,
}

impl Device {
    /// The `User-Agent` as a session stores it (bounded, no controls).
    pub fn user_agent(&self) -> Option<String> {
        let raw = self.user_agent.as_ref()?;
        // Headers are bytes; anything not UTF-8 is shown lossily.
        let text = String::from_utf8_lossy(&raw.as_bytes()[..raw.len().min(4096)]);
        gatehouse_core::account::bounded_user_agent(&text)
    }
}

tokio::task_local! {
    static CURRENT: Device;
}

/// The current request's device; `None` outside a request (unit tests).
pub fn current() -> Option<Device> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Makes the request's device current for everything that handles it.
pub async fn make_current(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let device = Device {
        user_agent: parts.headers.get(header::USER_AGENT).cloned(),
        address: ClientAddr::of(&parts, &state).0,
    };
    CURRENT
        .scope(device, next.run(Request::from_parts(parts, body)))
        .await
}
