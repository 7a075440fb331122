//! Passwords set through an e-mailed link: "Forgot your password?" on the
//! sign-in page ([`forgot`]), the page a link opens ([`set`]), and the links
//! themselves, made and mailed for resets and invitations ([`links`]).
//!
//! The answer to a reset request never depends on whether the address has an
//! account: the look-up, the link and the e-mail happen after the answer, in a
//! task of their own. A link sets a password and nothing more: it signs no one
//! in (the person signs in afterwards, second factor included), and it ends
//! the person's other sessions and app authorizations.

pub mod forgot;
pub mod links;
pub mod set;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub const FORGOT_PATH: &str = "/password/forgot";
pub const SET_PATH: &str = "/password/set";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(FORGOT_PATH, get(forgot::show).post(forgot::submit))
        .route(SET_PATH, get(set::show).post(set::submit))
}
