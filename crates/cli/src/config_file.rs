//! `serve --config FILE` and `gateway --config FILE`: a TOML file whose keys are
//! the command's long options (`-` written `_`), read generically from clap's
//! own description of the command, so an option added later has its key
//! without anyone touching this module. Precedence: options on the command
//! line, then environment variables, then the file, then the defaults. A secret
//! option (one whose environment value clap hides) may instead be given as
//! `<key>_file`, a path whose content is the secret.
//!
//! The file's values are handed to clap as if typed after the subcommand, but
//! only for options clap did not get from the command line or the environment;
//! each is first checked with the option's own value parser so that a bad value
//! is reported with its key and line. This module does not interpret any
//! setting: `serve` and `gateway` see a plain parsed [`Cli`].

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, FromArgMatches};

use crate::cli::Cli;

/// The subcommands that take `--config`.
pub const CONFIGURABLE: &[&str] = &["serve", "gateway"];
/// Options that are never keys: clap's own, and `--config` itself.
const NOT_KEYS: &[&str] = &["help", "version", "config"];
const SECRET_FILE_SUFFIX: &str = "_file";

/// Parses the process's command line, reading `--config` when `serve` or
/// `gateway` names one. A clap error (or `--help`) exits as clap does.
pub fn parse_cli() -> anyhow::Result<Cli> {
    parse_from(std::env::args_os().collect())
}

pub fn parse_from(mut argv: Vec<OsString>) -> anyhow::Result<Cli> {
    // A first look that tolerates missing required options (they may be in the
    // file) to learn the subcommand, its `--config` and where each value came from.
    if let Ok(probe) = crate::help::command()
        .ignore_errors(true)
        .try_get_matches_from(&argv)
        && let Some((name, sub)) = probe.subcommand()
        && CONFIGURABLE.contains(&name)
        && let Ok(Some(path)) = sub.try_get_one::<std::path::PathBuf>("config")
    {
        let file = ConfigFile::read(path, name)?;
        argv.extend(file.arguments(&[&probe, sub])?);
    }
    let matches = crate::help::command()
        .try_get_matches_from(&argv)
        .unwrap_or_else(|e| e.exit());
    Cli::from_arg_matches(&matches).map_err(|e| anyhow!("{e}"))
}

/// One command's view of a configuration file.
pub struct ConfigFile {
    /// The file's name as the operator gave it, for messages.
    name: String,
    command: clap::Command,
    /// (key, 1-based line, value), in file order.
    entries: Vec<(String, usize, toml::Value)>,
}

impl ConfigFile {
    /// Reads and parses `path` for the subcommand `for_command`, refusing keys
    /// that name no option of it.
    pub fn read(path: &Path, for_command: &str) -> anyhow::Result<Self> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {name}"))?;
        Self::parse(&name, &text, for_command)
    }

    pub fn parse(name: &str, text: &str, for_command: &str) -> anyhow::Result<Self> {
        let command = subcommand(for_command)?;
        // Parsed twice: `DeTable` keeps each key's position, `Table` gives the
        // values in their plain form.
        let spanned =
            toml::de::DeTable::parse(text).map_err(|e| anyhow!("{name} is not valid TOML: {e}"))?;
        let values: toml::Table = text
            .parse()
            .map_err(|e| anyhow!("{name} is not valid TOML: {e}"))?;
        let mut entries = Vec::new();
        for (key, _) in spanned.get_ref().iter() {
            let line = line_of(text, key.span().start);
            let key = key.get_ref().to_string();
            if option_for(&command, &key).is_none() {
                bail!(
                    "unknown key `{key}` in {name} line {line}: `gatehouse {for_command}` has no option --{}; its keys are: {}",
                    key.replace('_', "-"),
                    keys(&command).join(", ")
                );
            }
            let value = values
                .get(&key)
                .cloned()
                .ok_or_else(|| anyhow!("key `{key}` in {name} line {line} has no value"))?;
            entries.push((key, line, value));
        }
        Ok(Self {
            name: name.to_owned(),
            command,
            entries,
        })
    }

    /// The command-line arguments the file stands for, skipping every option
    /// that `given` (the matches so far: the top level's, for global options
    /// given before the subcommand, and the subcommand's) took from the command
    /// line or the environment; each value is checked by the option's own parser.
    pub fn arguments(&self, given: &[&ArgMatches]) -> anyhow::Result<Vec<OsString>> {
        let mut args = Vec::new();
        for (key, line, value) in &self.entries {
            let at = || format!("key `{key}` in {} line {line}", self.name);
            let Some((arg, from_file)) = option_for(&self.command, key) else {
                bail!("{}: unknown", at());
            };
            let id = arg.get_id().as_str();
            if given.iter().any(|m| overridden(m, id)) {
                continue;
            }
            if from_file && self.entries.iter().any(|(k, _, _)| *k == key_of(arg)) {
                bail!("{}: give either `{id}` or `{key}`, not both", at());
            }
            let long = arg.get_long().unwrap_or(id);
            if !arg.get_action().takes_values() {
                match value {
                    toml::Value::Boolean(true) => args.push(format!("--{long}").into()),
                    toml::Value::Boolean(false) => {}
                    _ => bail!("{}: must be true or false", at()),
                }
                continue;
            }
            for text in self.texts(value, arg, from_file).with_context(at)? {
                match check_value(arg, &text) {
                    Ok(_) => {}
                    // A secret's message could quote it.
                    Err(_) if is_secret(arg) => bail!("{}: not a valid value", at()),
                    Err(e) => bail!("{}: {}", at(), clap_message(&e)),
                }
                let mut one = OsString::from(format!("--{long}="));
                one.push(text);
                args.push(one);
            }
        }
        Ok(args)
    }

    /// The text(s) a value stands for on the command line.
    fn texts(
        &self,
        value: &toml::Value,
        arg: &Arg,
        from_file: bool,
    ) -> anyhow::Result<Vec<String>> {
        let many =
            matches!(arg.get_action(), ArgAction::Append) || arg.get_value_delimiter().is_some();
        let texts = match value {
            toml::Value::Array(items) if many => items
                .iter()
                .map(scalar)
                .collect::<anyhow::Result<Vec<_>>>()?,
            toml::Value::Array(_) => bail!("takes one value, not a list"),
            other => vec![scalar(other)?],
        };
        if !from_file {
            return Ok(texts);
        }
        texts
            .iter()
            .map(|path| {
                let secret = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the secret file {path}"))?;
                Ok(secret.trim_end_matches(['\n', '\r']).to_owned())
            })
            .collect()
    }

    /// Every key the file sets, for `config check`.
    pub fn keys_set(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _, _)| k.as_str()).collect()
    }
}

/// Runs the option's own value parser on `text`, alone: a command of just this
/// option (its relations to other options left out).
fn check_value(arg: &Arg, text: &str) -> Result<(), clap::Error> {
    let probe = Arg::new("value")
        .long("value")
        .action(ArgAction::Set)
        .value_parser(arg.get_value_parser().clone());
    clap::Command::new("gatehouse")
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from([format!("--value={text}")])
        .map(drop)
}

/// A scalar TOML value as command-line text.
fn scalar(value: &toml::Value) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => {
            bail!("must be a string, a number or a boolean")
        }
    })
}

/// Whether clap took the option from the command line or the environment,
/// which both beat the file.
fn overridden(m: &ArgMatches, id: &str) -> bool {
    // `try_` because the top level's matches do not know a subcommand's options.
    m.try_contains_id(id).unwrap_or(false)
        && matches!(
            m.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
}

/// The built subcommand (global options included, as clap propagates them).
pub fn subcommand(name: &str) -> anyhow::Result<clap::Command> {
    let mut cli = crate::help::command();
    cli.build();
    cli.find_subcommand(name)
        .cloned()
        .ok_or_else(|| anyhow!("no command `{name}`"))
}

/// The options that have keys: every visible long option but `--help`,
/// `--version` and `--config`.
fn key_options(command: &clap::Command) -> impl Iterator<Item = &Arg> {
    command.get_arguments().filter(|a| {
        a.get_long().is_some() && !a.is_hide_set() && !NOT_KEYS.contains(&a.get_id().as_str())
    })
}

/// The key of an option.
pub fn key_of(arg: &Arg) -> String {
    arg.get_long()
        .unwrap_or(arg.get_id().as_str())
        .replace('-', "_")
}

/// Every key of a command, secrets' `*_file` forms included.
pub fn keys(command: &clap::Command) -> Vec<String> {
    let mut keys = Vec::new();
    for arg in key_options(command) {
        keys.push(key_of(arg));
        if is_secret(arg) {
            keys.push(format!("{}{SECRET_FILE_SUFFIX}", key_of(arg)));
        }
    }
    keys
}

/// The option a key sets, and whether the key is its `*_file` form.
fn option_for<'c>(command: &'c clap::Command, key: &str) -> Option<(&'c Arg, bool)> {
    let mut options = key_options(command);
    if let Some(arg) = options.find(|a| key_of(a) == key) {
        return Some((arg, false));
    }
    let base = key.strip_suffix(SECRET_FILE_SUFFIX)?;
    key_options(command)
        .find(|a| key_of(a) == base && is_secret(a))
        .map(|a| (a, true))
}

/// A secret: an option clap is told never to show the environment value of.
fn is_secret(arg: &Arg) -> bool {
    arg.is_hide_env_values_set() && arg.get_action().takes_values()
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// clap's message on one line, without its "error: " prefix, usage and hints.
pub fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    text.lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned()
}

#[cfg(test)]
mod tests;
