mod authorize;
mod code_exchange;
mod introspect;
mod oidc_flow;
mod refresh;
mod session;
mod token;
mod token_errors;
