//! One module per command group; each takes the opened store and prints through [`Out`].

mod api;
mod app;
mod audit;
mod copy;
mod gateway;
mod keys;
mod org;
mod serve;
mod user;

use gatehouse_core::admin::AdminError;
use gatehouse_core::clock::{Clock, SystemClock};

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
    if let Command::Copy { from, to } = &cli.command {
        return copy::run(from, to).await;
    }
    let store = db::open(&cli.database_url, &db::DbOptions::default()).await?;
    let now = SystemClock.now();
    let s = store.as_ref();
    match cli.command {
        Command::Serve(_) | Command::Gateway(_) | Command::Copy { .. } => {
            unreachable!("handled above")
        }
        Command::Migrate => {
            out.print(&serde_json::json!({"migrated": true}), || {
                "database is up to date".into()
            });
            Ok(())
        }
        Command::Org(c) => org::run(s, now, c, &out).await,
        Command::User(c) => user::run(s, now, c, &out).await,
        Command::Api(c) => api::run(s, now, c, &out).await,
        Command::App(c) => app::run(s, now, c, &out, cli.dev, cli.dns_server).await,
        Command::Keys(c) => keys::run(s, now, c, &out).await,
        Command::Audit { org, limit, before } => audit::run(s, &org, limit, before, &out).await,
    }
    .map_err(explain)
}

/// Admin errors already read well; keep them as the message.
fn explain(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<AdminError>() {
        Ok(AdminError::Store(s)) => anyhow::anyhow!("database error: {s}"),
        Ok(other) => anyhow::anyhow!("{other}"),
        Err(e) => e,
    }
}
