//! `gatehouse config check FILE [--for serve|gateway]`: reads the file as the
//! command would (keys, values, `*_file` secrets) and parses the command line it
//! stands for, without opening a database or a port.

use anyhow::anyhow;
use serde_json::json;

use crate::cli::{ConfigCmd, ConfigFor};
use crate::config_file::{ConfigFile, clap_message};
use crate::output::Out;

pub fn run(cmd: &ConfigCmd, out: &Out) -> anyhow::Result<()> {
    let ConfigCmd::Check { file, for_command } = cmd;
    let name = match for_command {
        ConfigFor::Serve => "serve",
        ConfigFor::Gateway => "gateway",
    };
    let config = ConfigFile::read(file, name)?;
    let mut argv: Vec<std::ffi::OsString> = vec!["gatehouse".into(), name.into()];
    argv.extend(config.arguments(&[])?);
    // What is still missing (e.g. the gateway's required options) may come from
    // the environment at start-up, as clap reads it here too.
    crate::help::command()
        .try_get_matches_from(&argv)
        .map_err(|e| anyhow!("{}: {}", file.display(), clap_message(&e)))?;
    let keys = config.keys_set();
    out.print(
        &json!({"file": file.display().to_string(), "command": name, "keys": keys}),
        || {
            format!(
                "{}: valid for `gatehouse {name}` ({} keys: {})",
                file.display(),
                keys.len(),
                keys.join(", ")
            )
        },
    );
    Ok(())
}
