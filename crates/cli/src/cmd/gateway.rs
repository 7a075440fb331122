//! `gatehouse gateway`: validate Gatehouse access tokens per route and forward to
//! an upstream (or to the built-in demo products API with `--demo`).

use std::time::Duration;

use anyhow::{Context, bail};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_gateway::{
    Alg, ApiSecret, Backend, Gateway, Proxy, Route, Routes, Validator, ValidatorConfig, demo,
};
use gatehouse_server::http_server;
use gatehouse_server::metrics::process::ProcessCollector;

use crate::cli::{GatewayArgs, LogFormat};

const DEMO_ROUTE: &str = "GET /v1/products/*=cfgateway";
/// How long in-flight requests may finish at shutdown before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let routes = routes(&args)?;
    let backend = match &args.upstream {
        Some(url) => Backend::Upstream(Box::new(
            Proxy::new(url, Duration::from_secs(args.upstream_timeout_secs))
                .with_context(|| format!("--upstream {url}"))?,
        )),
        None => Backend::Demo(demo::router()),
    };
    let mut config = ValidatorConfig::new(
        args.issuer.clone(),
        args.audience.clone(),
        args.api_client_id.clone(),
        ApiSecret::new(args.api_client_secret.clone()),
    );
    config.leeway = Duration::from_secs(args.leeway_secs.min(300));
    config.max_feed_staleness = Duration::from_secs(args.max_feed_staleness_secs);
    config.introspection_cache = Duration::from_secs(args.introspection_cache_secs);
    config.public_url = args.public_url.clone();
    config.algorithms = args
        .algorithms
        .iter()
        .map(|a| {
            Alg::parse(a.trim())
                .with_context(|| format!("unknown algorithm `{a}` (ES256, RS256, EdDSA)"))
        })
        .collect::<anyhow::Result<_>>()?;
    let validator = Validator::start(config, Duration::from_secs(5))
        .await
        .with_context(|| format!("cannot start validating tokens of {}", args.issuer))?;

    if let Some(at) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .with_context(|| format!("cannot listen on {at} (--metrics-listen)"))?;
        let maddr = listener.local_addr()?;
        let mut registry = validator.metrics().registry(&validator);
        registry.register_collector(Box::new(ProcessCollector::new(SystemClock.now())));
        gatehouse_server::metrics::spawn(listener, registry);
        eprintln!("Gatehouse gateway metrics on http://{maddr}/metrics");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let to = args
        .upstream
        .as_deref()
        .unwrap_or("the built-in demo products API");
    eprintln!(
        "Gatehouse gateway listening on http://{addr} (issuer {}, audience {}, {} route(s) to {to})",
        args.issuer,
        args.audience,
        routes.len()
    );
    if args.demo {
        eprintln!(
            "Try: curl -H \"Authorization: Bearer $ACCESS_TOKEN\" 'http://{addr}/v1/products/get-status?productCode=gcs1'"
        );
    }
    let app = Gateway {
        validator,
        routes,
        backend,
    }
    .router();
    // The same accept loop as `serve`: header and body deadlines, a connection cap.
    let app =
        http_server::with_body_deadline(app, Duration::from_millis(args.body_read_timeout_ms));
    let limits = http_server::Limits {
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(args.idle_timeout_ms),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        shutdown_grace: SHUTDOWN_GRACE,
    };
    http_server::serve_router(listener, limits, app, shutdown_signal(), || {}).await?;
    Ok(())
}

fn routes(args: &GatewayArgs) -> anyhow::Result<Routes> {
    let mut list = Vec::new();
    let mut case_insensitive = args.case_insensitive_routes;
    for spec in &args.routes {
        list.push(Route::parse(spec)?);
    }
    if let Some(file) = &args.routes_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let parsed = Routes::parse_toml(&text)?;
        case_insensitive |= parsed.case_insensitive;
        list.extend(parsed.routes);
    }
    if list.is_empty() {
        if !args.demo {
            bail!("no routes: give --route \"GET /v1/products/*=cfgateway\" or --routes FILE");
        }
        list.push(Route::parse(DEMO_ROUTE)?);
    }
    Ok(Routes::with_case(list, case_insensitive))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            () = term => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only on a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
