//! Baseline for `bench/token.sh`: the cheapest possible `POST /connect/token` on
//! the same stack as Gatehouse (axum + tokio multi-thread runtime). It reads the
//! form body as bytes and answers `{"ok":true}`, so the difference between this
//! and Gatehouse's figures is what Gatehouse itself costs.
//!
//! It also answers `GET /v1/products/get-status` the same way, as the upstream of
//! `bench/gateway.sh`.
//!
//! Usage: `gatehouse-bench-hello 127.0.0.1:18181`

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

async fn token(body: Bytes) -> impl IntoResponse {
    // Touch the body so it is really read, as a token endpoint would.
    std::hint::black_box(body.len());
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"ok":true}"#,
    )
}

async fn status() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"productCode":"gcs1","status":"active"}"#,
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: gatehouse-bench-hello ADDR (e.g. 127.0.0.1:18181)");
        return ExitCode::from(2);
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bad address {addr:?}: {e}");
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
    let app = Router::new()
        .route("/connect/token", post(token))
        .route("/v1/products/get-status", get(status));
    eprintln!("gatehouse-bench-hello listening on {addr}");
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("server error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
