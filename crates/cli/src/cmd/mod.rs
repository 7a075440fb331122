//! One module per command group; each takes the opened store and prints through [`Out`].

mod api;
mod app;
mod audit;
mod backup;
mod config;
mod copy;
mod gateway;
mod keys;
mod org;
mod serve;
mod user;

use gatehouse_core::admin::AdminError;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::ports::StoreError;

use crate::cli::{Cli, Command};
use crate::db;
use crate::output::Out;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = Out { json: cli.json };
    if let Command::Serve(args) = cli.command {
        return serve::run(&cli.database_url, args, cli.dev, cli.dns_server).await;
    }
    if let Command::Gateway(args) = cli.command {
        return gateway::run(args).await;
    }
    match &cli.command {
        Command::Copy { from, to } => return copy::run(from, to).await,
        Command::Config(c) => return config::run(c, &out),
        Command::Backup { to } => return backup::backup(&cli.database_url, to, &out).await,
        Command::Restore { from, force } => {
            return backup::restore(&cli.database_url, from, *force, &out).await;
        }
        Command::Migrate => {}
        _ => db::require_existing(&cli.database_url)?,
    }
    let store = db::open(&cli.database_url, &db::DbOptions::default()).await?;
    let now = SystemClock.now();
    let s = store.as_ref();
    let url = cli.database_url.clone();
    match cli.command {
        Command::Serve(_)
        | Command::Gateway(_)
        | Command::Copy { .. }
        | Command::Config(_)
        | Command::Backup { .. }
        | Command::Restore { .. } => {
            unreachable!("handled above")
        }
        Command::Migrate => {
            out.print(&serde_json::json!({"migrated": true}), || {
                "database is up to date".into()
            });
            Ok(())
        }
        Command::Org(c) => org::run(s, now, c, &out, cli.dev).await,
        Command::User(c) => user::run(s, now, c, &out).await,
        Command::Api(c) => api::run(s, now, c, &out).await,
        Command::App(c) => app::run(s, now, c, &out, cli.dev, cli.dns_server).await,
        Command::Keys(c) => keys::run(s, now, c, &out).await,
        Command::Audit { org, limit, before } => audit::run(s, &org, limit, before, &out).await,
    }
    .map_err(|e| explain(e, &url))
}

/// Admin errors already read well; keep them as the message. A database's
/// own error names the database, so a wrong `--database-url` shows.
fn explain(e: anyhow::Error, url: &str) -> anyhow::Error {
    let db = db::redact(url);
    match e.downcast::<AdminError>() {
        Ok(AdminError::Store(s)) => anyhow::anyhow!("database error ({db}): {s}"),
        Ok(other) => anyhow::anyhow!("{other}"),
        Err(e) if e.chain().any(|c| c.downcast_ref::<StoreError>().is_some()) => {
            e.context(format!("database error ({db})"))
        }
        Err(e) => e,
    }
}
