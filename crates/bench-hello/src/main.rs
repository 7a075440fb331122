//! Baseline for `bench/token.sh`: the cheapest possible `POST /connect/token` on
//! the same stack as Gatehouse (axum + tokio multi-thread runtime). It reads the
//! form body as bytes and answers `{"ok":true}`, so the difference between this
//! and Gatehouse's figures is what Gatehouse itself costs.
//!
//! It also answers `GET /v1/products/get-status` the same way, as the upstream of
//! `bench/gateway.sh`.
//!
//! Two floors, on the same stack, for the goals that are ratios to hello:
//! `POST /floor/sign` makes one ES256 signature per request (what every
//! access token costs at least) and `POST /floor/verify` checks one ES256
//! signature on a parsed key (what every `private_key_jwt` assertion and DPoP
//! proof costs at least), both with aws-lc-rs as Gatehouse does. Their CPU
//! per request less hello's is the signature's or the check's own cost, as
//! measured in the same run.
//!
//! Usage: `gatehouse-bench-hello 127.0.0.1:18181`

use std::net::SocketAddr;
use std::process::ExitCode;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    ParsedPublicKey,
};
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

/// What a compact JWS signs: about the size of an access token's header and
/// claims.
const SIGNING_INPUT: &[u8; 640] = &[b'e'; 640];

/// One key pair for the floors, and a signature of [`SIGNING_INPUT`] by it.
struct Floors {
    pair: EcdsaKeyPair,
    public: ParsedPublicKey,
    signature: Vec<u8>,
    rng: SystemRandom,
}

impl Floors {
    fn new() -> Result<Self, String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| format!("key generation: {e}"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|e| format!("key: {e}"))?;
        let public = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref())
            .map_err(|e| format!("public key: {e}"))?;
        let signature = pair
            .sign(&rng, SIGNING_INPUT)
            .map_err(|e| format!("sign: {e}"))?
            .as_ref()
            .to_vec();
        Ok(Self {
            pair,
            public,
            signature,
            rng,
        })
    }
}

static FLOORS: std::sync::OnceLock<Floors> = std::sync::OnceLock::new();

async fn floor_sign(body: Bytes) -> impl IntoResponse {
    std::hint::black_box(body.len());
    let signed = FLOORS
        .get()
        .map(|f| f.pair.sign(&f.rng, SIGNING_INPUT).is_ok());
    answer(signed == Some(true))
}

async fn floor_verify(body: Bytes) -> impl IntoResponse {
    std::hint::black_box(body.len());
    let verified = FLOORS.get().map(|f| {
        f.public
            .verify_sig(std::hint::black_box(SIGNING_INPUT), &f.signature)
            .is_ok()
    });
    answer(verified == Some(true))
}

fn answer(ok: bool) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        if ok {
            r#"{"ok":true}"#
        } else {
            r#"{"ok":false}"#
        },
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
    match Floors::new() {
        Ok(f) => {
            let _ = FLOORS.set(f);
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = Router::new()
        .route("/connect/token", post(token))
        .route("/floor/sign", post(floor_sign))
        .route("/floor/verify", post(floor_verify))
        .route("/v1/products/get-status", get(status));
    eprintln!("gatehouse-bench-hello listening on {addr}");
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("server error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
