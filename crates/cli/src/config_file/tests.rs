use std::ffi::OsString;
use std::io::Write;

use super::{ConfigFile, keys, parse_from, subcommand};

fn argv(args: &[&str]) -> Vec<OsString> {
    std::iter::once("gatehouse")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// Every option of `serve` and `gateway` (those added later included) has a key,
/// and the commented example files in `deploy/` show each one.
#[test]
fn every_option_of_serve_and_gateway_has_a_key_shown_in_the_example() {
    for (command, example) in [("serve", "gatehouse.toml"), ("gateway", "gateway.toml")] {
        let cmd = subcommand(command).unwrap();
        let keys = keys(&cmd);
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version", "config"].contains(&long) || arg.is_hide_set() {
                continue;
            }
            assert!(
                keys.contains(&long.replace('-', "_")),
                "{command} --{long} has no key"
            );
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/");
        let text = std::fs::read_to_string(format!("{path}{example}")).unwrap();
        for key in &keys {
            let shown = text.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            assert!(shown, "deploy/{example} does not show the key `{key}`");
        }
    }
    let serve = keys(&subcommand("serve").unwrap());
    for key in [
        "listen",
        "database_url",
        "dev",
        "dns_server",
        "trusted_proxies",
    ] {
        assert!(serve.contains(&key.to_owned()), "{key}");
    }
    assert!(serve.contains(&"key_encryption_key_file".to_owned()));
    let gateway = keys(&subcommand("gateway").unwrap());
    assert!(gateway.contains(&"api_client_secret_file".to_owned()));
}

#[test]
fn the_files_values_reach_the_parsed_command_line() {
    let kek = file("c2VjcmV0LWtleS1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcw\n");
    let conf = file(&format!(
        "listen = \"127.0.0.1:9999\"\ncode_ttl = 60\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.0.1\"]\n\
         dev = true\ndatabase_url = \"sqlite://from-file.db\"\nkey_encryption_key_file = {:?}\n\
         forwarded_header = \"forwarded\"\n",
        kek.path().display().to_string()
    ));
    let path = conf.path().display().to_string();
    let cli = parse_from(argv(&["serve", "--config", &path])).unwrap();
    assert_eq!(cli.database_url, "sqlite://from-file.db");
    assert!(cli.dev);
    let crate::cli::Command::Serve(serve) = cli.command else {
        panic!("not serve")
    };
    assert_eq!(serve.listen.to_string(), "127.0.0.1:9999");
    assert_eq!(serve.code_ttl, 60);
    assert_eq!(serve.trusted_proxies.len(), 2);
    assert!(matches!(
        serve.forwarded_header,
        crate::cli::ForwardedHeaderArg::Forwarded
    ));
    assert_eq!(
        serve.kek.key_encryption_key.as_deref(),
        Some("c2VjcmV0LWtleS1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcw"),
        "the secret file's content, without its newline"
    );
}

#[test]
fn options_on_the_command_line_beat_the_file() {
    let conf = file("listen = \"127.0.0.1:9999\"\ncode_ttl = 60\n");
    let path = conf.path().display().to_string();
    let cli = parse_from(argv(&[
        "serve",
        "--listen",
        "127.0.0.1:7777",
        "--config",
        &path,
    ]))
    .unwrap();
    let crate::cli::Command::Serve(serve) = cli.command else {
        panic!("not serve")
    };
    assert_eq!(serve.listen.to_string(), "127.0.0.1:7777");
    assert_eq!(serve.code_ttl, 60);
}

#[test]
fn a_required_gateway_option_may_come_from_the_file() {
    let secret = file("s3cret\n");
    let conf = file(&format!(
        "issuer = \"http://127.0.0.1:8080\"\naudience = \"https://gateway.acme.test\"\n\
         api_client_id = \"api-1\"\napi_client_secret_file = {:?}\ndemo = true\n\
         route = [\"GET /a/*=x\", \"GET /b/*=y\"]\n",
        secret.path().display().to_string()
    ));
    let path = conf.path().display().to_string();
    let cli = parse_from(argv(&["gateway", "--config", &path])).unwrap();
    let crate::cli::Command::Gateway(g) = cli.command else {
        panic!("not gateway")
    };
    assert_eq!(g.api_client_secret, "s3cret");
    assert_eq!(g.routes, ["GET /a/*=x", "GET /b/*=y"]);
    assert!(g.demo);
}

#[test]
fn mistakes_name_the_key_and_its_line() {
    let cases = [
        (
            "listen = \"127.0.0.1:1\"\n\nlisten_addr = 1\n",
            "serve",
            "unknown key `listen_addr`",
            "line 3",
        ),
        (
            "# comment\ncode_ttl = 5\n",
            "serve",
            "key `code_ttl`",
            "line 2",
        ),
        ("listen = [\"a\", \"b\"]\n", "serve", "not a list", "line 1"),
        ("dev = \"yes\"\n", "serve", "true or false", "line 1"),
        (
            "key_file = \"k\"\n",
            "gateway",
            "unknown key `key_file`",
            "line 1",
        ),
        (
            "api_client_secret = \"a\"\napi_client_secret_file = \"/nonexistent\"\n",
            "gateway",
            "not both",
            "line 2",
        ),
        (
            "[serve]\nlisten = 1\n",
            "serve",
            "unknown key `serve`",
            "line 1",
        ),
    ];
    for (text, command, what, line) in cases {
        let err = ConfigFile::parse("g.toml", text, command)
            .and_then(|f| f.arguments(&[]))
            .map(|_| ())
            .unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains(what) && err.contains(line) && err.contains("g.toml"),
            "{text:?}: {err}"
        );
    }
    let err = ConfigFile::parse("g.toml", "listen = \n", "serve")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not valid TOML"), "{err}");
}

#[test]
fn a_secret_files_content_never_reaches_an_error() {
    let secret = file("not-base64-$$$-hunter2\n");
    let conf = format!(
        "key_encryption_key_file = {:?}\n",
        secret.path().display().to_string()
    );
    // The value parser accepts any string; a bad key is refused when it is used,
    // so only the unreadable file can fail here: its path, never a content.
    let ok = ConfigFile::parse("g.toml", &conf, "serve")
        .unwrap()
        .arguments(&[])
        .unwrap();
    assert_eq!(ok.len(), 1);
    let missing = ConfigFile::parse(
        "g.toml",
        "key_encryption_key_file = \"/nonexistent/k\"\n",
        "serve",
    )
    .unwrap()
    .arguments(&[])
    .unwrap_err();
    let msg = format!("{missing:#}");
    assert!(
        msg.contains("/nonexistent/k") && msg.contains("line 1"),
        "{msg}"
    );
}
