//! `gatehouse serve`: open the store, load (or make) the signing keys, listen,
//! and shut down gracefully on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::keyring::KeyRing;
use gatehouse_core::ports::Store;
use gatehouse_server::config::ForwardedHeader;
use gatehouse_server::metrics::{self, PoolProbe, PoolUse};
use gatehouse_server::{AppState, ServerConfig};
use gatehouse_store_sql::SqlStore;

use crate::cli::{ForwardedHeaderArg, LogFormat, ServeArgs};
use crate::db;

pub async fn run(
    database_url: &str,
    args: ServeArgs,
    dev: bool,
    dns_server: Option<SocketAddr>,
) -> anyhow::Result<()> {
    init_logging(args.log_format);
    if dev {
        warn_dev_mode();
    }
    // Fail now, not at the first registration, when DNS cannot be set up.
    gatehouse_server::dns::redirect_policy(dev, dns_server)?;
    let opts = db::DbOptions {
        sqlite_busy_timeout: Duration::from_millis(args.sqlite_busy_timeout_ms),
        pg_max_connections: args.db_max_connections,
        pg_statement_timeout: Duration::from_millis(args.db_statement_timeout_ms),
        pg_acquire_timeout: Duration::from_millis(args.db_acquire_timeout_ms),
    };
    let (store, pool) = open_store(database_url, &opts).await?;
    let kek = db::key_encryption_key(
        args.kek.key_encryption_key.as_deref(),
        &args.kek.key_file,
        true,
    )?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = KeyRing::load_or_create(store.as_ref(), &kek, clock.now())
        .await
        .context("cannot load the signing keys")?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let issuer = args.issuer.unwrap_or_else(|| format!("http://{addr}"));
    let mut config = ServerConfig::new(&issuer);
    config.failures_per_client = args.failures_per_client;
    config.failures_per_address = args.failures_per_address;
    config.dpop_nonce = args.dpop_nonce;
    config.dpop_window = args.dpop_window_secs;
    config.code_ttl = args.code_ttl;
    config.refresh_ttl = args.refresh_ttl;
    config.refresh_family_max_age = args.refresh_family_max_age * 24 * 3600;
    config.key_rotation_period =
        (args.key_rotation_days > 0).then_some(args.key_rotation_days * 24 * 3600);
    config.session_ttl = args.session_ttl;
    config.backchannel.enabled = args.backchannel_logout;
    config.dev = dev;
    config.dns_server = dns_server;
    config.trusted_proxies = args.trusted_proxies;
    config.forwarded_header = match args.forwarded_header {
        ForwardedHeaderArg::XForwardedFor => ForwardedHeader::XForwardedFor,
        ForwardedHeaderArg::Forwarded => ForwardedHeader::Forwarded,
    };
    config.header_read_timeout = Duration::from_millis(args.header_read_timeout_ms);
    config.idle_timeout = Duration::from_millis(args.idle_timeout_ms);
    config.body_read_timeout = Duration::from_millis(args.body_read_timeout_ms);
    config.max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    config.housekeeping_every = Duration::from_millis(args.housekeeping_interval_ms);
    config.mail = mailer(args.smtp)?;
    let first_run = has_no_apps(store.as_ref()).await;
    let state = AppState::start(store, keys, Arc::new(kek), clock, config).await;
    if let Some(at) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .with_context(|| format!("cannot listen on {at} (--metrics-listen)"))?;
        let maddr = listener.local_addr()?;
        metrics::spawn(listener, state.metrics.registry(&state, Some(pool)));
        tracing::info!(addr = %maddr, "metrics listening");
    }

    println!(
        "Gatehouse listening on http://{addr} (issuer {issuer}, database {})",
        db::redact(database_url)
    );
    println!("Discovery: {issuer}/.well-known/openid-configuration");
    match &state.config.mail {
        Some(m) => println!(
            "Mail: invitations and password resets go out through {}",
            m.server()
        ),
        None => {
            println!("Mail: off (no --smtp-url); the console shows invitation links to pass on")
        }
    }
    if first_run {
        print_first_steps();
    } else {
        println!("Console: {issuer}/console");
    }
    tracing::info!(%addr, %issuer, "listening");

    gatehouse_server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// The SMTP transport, when `--smtp-url` is set (checked now, so a bad
/// setting stops the start instead of the first invitation).
fn mailer(smtp: crate::cli::SmtpArgs) -> anyhow::Result<Option<gatehouse_server::mail::Mailer>> {
    let Some(url) = smtp.smtp_url else {
        return Ok(None);
    };
    let from = smtp.smtp_from.unwrap_or_default();
    let credentials = smtp.smtp_username.zip(smtp.smtp_password);
    gatehouse_server::mail::Mailer::new(&url, &from, credentials)
        .map(Some)
        .map_err(|e| anyhow::anyhow!(e))
}

/// No organization has an app yet (or the store cannot tell: then say nothing
/// misleading either way, and show the steps).
async fn has_no_apps(store: &dyn Store) -> bool {
    let Ok(orgs) = store.list_orgs().await else {
        return true;
    };
    for org in orgs {
        match store.apps_for_org(&org.id).await {
            Ok(apps) if apps.is_empty() => {}
            _ => return false,
        }
    }
    true
}

/// The README's first commands, for an installation with no app yet.
fn print_first_steps() {
    println!("Register a first app:");
    println!("  gatehouse org create --name \"Acme Studio\"");
    println!("  gatehouse user create --org acme-studio --email dev@acme.test --role developer");
    println!(
        "  gatehouse api create --org acme-studio --name Gateway --audience https://gateway.acme.test --scopes cfgateway"
    );
    println!(
        "  gatehouse app register --org acme-studio --name \"Nightly sync\" --grant client_credentials --on-behalf-of dev@acme.test --scopes cfgateway"
    );
}

/// The store named by the URL, and a probe of its connection pool for the metrics.
async fn open_store(
    url: &str,
    opts: &db::DbOptions,
) -> anyhow::Result<(Arc<dyn Store>, PoolProbe)> {
    fn probe<D: gatehouse_store_sql::Dialect>(store: SqlStore<D>) -> PoolProbe {
        Arc::new(move || {
            let used = store.connections();
            PoolUse {
                size: used.open,
                idle: used.idle,
                max: used.max,
            }
        })
    }
    if db::is_postgres(url) {
        let store = db::open_postgres(url, opts).await?;
        let pool = probe(store.clone());
        return Ok((Arc::new(store), pool));
    }
    if url.starts_with("sqlite:") {
        let store = db::open_sqlite(url, opts).await?;
        let pool = probe(store.clone());
        return Ok((Arc::new(store), pool));
    }
    // Unsupported: `db::open` says why.
    let store = db::open(url, opts).await?;
    Ok((
        store,
        Arc::new(|| PoolUse {
            size: 0,
            idle: 0,
            max: 0,
        }),
    ))
}

/// Loud on purpose: development mode must never go unnoticed in production.
fn warn_dev_mode() {
    const LINE: &str = "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!";
    eprintln!("{LINE}");
    eprintln!("!! DEVELOPMENT MODE (--dev)");
    eprintln!(
        "!! DEVELOPMENT MODE: http://localhost and http://127.0.0.1 redirect URIs are accepted."
    );
    eprintln!("!! Never run production with --dev.");
    eprintln!("{LINE}");
    tracing::warn!(
        "DEVELOPMENT MODE: http://localhost and http://127.0.0.1 redirect URIs are accepted. Never run production with --dev."
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
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
