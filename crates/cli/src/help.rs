//! The command line as parsed and as `--help` shows it: [`Cli`]'s declaration,
//! with each global option hidden on the commands that ignore it (`--dev` and
//! `--dns-server` matter to `serve` and to the app commands that take redirect
//! URIs only; `gateway` opens no database; `serve` prints no JSON). A hidden
//! option is still accepted, so commands that pass it everywhere keep working,
//! and it has no configuration-file key.

use clap::{Arg, Command, CommandFactory};

use crate::cli::Cli;

/// Whether the command at `path` (e.g. `app register`) uses the global option `id`.
fn uses(path: &str, id: &str) -> bool {
    let top = path.split(' ').next().unwrap_or_default();
    match id {
        "database_url" => !matches!(top, "gateway" | "config" | "copy"),
        "json" => !matches!(top, "serve" | "gateway" | "copy"),
        // A loopback `http` issuer is allowed in development mode.
        "dev" if path == "org identity-provider set" => true,
        "dev" | "dns_server" => matches!(path, "serve" | "app register" | "app update"),
        _ => true,
    }
}

/// The command to parse with.
pub fn command() -> Command {
    let mut cli = Cli::command();
    let globals: Vec<Arg> = cli
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    give_globals(&mut cli, "", &globals);
    cli
}

/// Gives every subcommand its own copy of each global option, hidden where
/// unused, before clap propagates them: clap propagates a global option only
/// to subcommands that do not have it yet.
fn give_globals(cmd: &mut Command, path: &str, globals: &[Arg]) {
    for sub in cmd.get_subcommands_mut() {
        let sub_path = if path.is_empty() {
            sub.get_name().to_owned()
        } else {
            format!("{path} {}", sub.get_name())
        };
        let mut owned = std::mem::take(sub);
        for arg in globals {
            let unused = !uses(&sub_path, arg.get_id().as_str());
            owned = owned.arg(arg.clone().hide(unused));
        }
        give_globals(&mut owned, &sub_path, globals);
        *sub = owned;
    }
}

#[cfg(test)]
mod tests {
    use super::command;

    /// Issue 14 §8: `--help` describes every option and argument.
    #[test]
    fn every_option_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                assert!(
                    sub.get_about().is_some(),
                    "{path} {} has no description",
                    sub.get_name()
                );
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&command(), "gatehouse", &mut missing);
        assert!(
            missing.is_empty(),
            "options without a description: {missing:?}"
        );
    }

    fn shown(path: &[&str]) -> Vec<String> {
        let mut cmd = command();
        for name in path {
            cmd = cmd.find_subcommand(name).unwrap().clone();
        }
        cmd.get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect()
    }

    #[test]
    fn global_options_show_only_on_the_commands_that_use_them() {
        let serve = shown(&["serve"]);
        assert!(serve.contains(&"dev".into()) && serve.contains(&"dns-server".into()));
        assert!(serve.contains(&"database-url".into()) && !serve.contains(&"json".into()));
        let gateway = shown(&["gateway"]);
        for global in ["dev", "dns-server", "database-url", "json"] {
            assert!(
                !gateway.contains(&global.into()),
                "gateway shows --{global}"
            );
        }
        let org = shown(&["org", "create"]);
        assert!(org.contains(&"json".into()) && org.contains(&"database-url".into()));
        assert!(!org.contains(&"dev".into()) && !org.contains(&"dns-server".into()));
        let register = shown(&["app", "register"]);
        assert!(register.contains(&"dev".into()) && register.contains(&"dns-server".into()));
        // Still accepted where the README passes them.
        crate::config_file::parse_from(
            ["gatehouse", "org", "list", "--dev", "--json"]
                .iter()
                .map(std::ffi::OsString::from)
                .collect(),
        )
        .unwrap();
    }
}
