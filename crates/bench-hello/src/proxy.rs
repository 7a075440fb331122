//! Baseline for `bench/gateway.sh`: the gateway's own reverse proxy
//! (`gatehouse_gateway::Proxy`, same axum + hyper-util stack) with no token
//! validation, so the difference to `gatehouse gateway` is what validation costs.
//!
//! Usage: `gatehouse-bench-proxy LISTEN_ADDR UPSTREAM_URL`

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use gatehouse_gateway::Proxy;
use gatehouse_gateway::proxy::Forward;

async fn forward(
    State(proxy): State<Proxy>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let how = Forward {
        principal: None,
        peer,
        authorization: false,
    };
    proxy.forward(req, &how).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(upstream)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: gatehouse-bench-proxy LISTEN_ADDR UPSTREAM_URL");
        return ExitCode::from(2);
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("bad address {addr:?}");
        return ExitCode::from(2);
    };
    let proxy = match Proxy::new(upstream, Duration::from_secs(30)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = Router::new().fallback(forward).with_state(proxy);
    eprintln!("gatehouse-bench-proxy listening on {addr}, forwarding to {upstream}");
    if let Err(e) = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    {
        eprintln!("server error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
