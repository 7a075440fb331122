//! One file per port of `gatehouse_core::ports`, each written once and compiled
//! for both dialects ([`for_each_dialect!`](crate::for_each_dialect)). Each
//! mutation with more than one statement is one [`Write`](crate::write::Write);
//! every one that can end tokens or stale a cache appends its change in it.

mod account;
mod api;
mod app;
mod audit;
mod backchannel;
mod device;
mod feed;
mod grant;
mod grant_flow;
mod key;
mod mail_link;
mod mfa_roles;
mod org;
mod passkey;
mod pushed;
mod second_factor;
mod session;
mod throttle;
mod token;
mod upstream;
mod user;

pub(crate) use backchannel::Sessions;
pub(crate) use grant::{INSERT_REFRESH_TOKEN, bind_refresh_token};
pub(crate) use grant_flow::claim_code_once;
pub(crate) use token::{INSERT_REFERENCE_TOKEN, bind_reference_token};
