//! The README's tour, run as written: every ```sh block, in order, in one bash
//! (as one person's terminal), against a real `gatehouse serve` started in a
//! stand-in for the clone's directory. After the first block the shell moves to
//! another directory, so every later block must work from anywhere. Output
//! comments in a block (`# {"active":false}`, `# HTTP/1.1 401 …`) must match
//! what the block printed, up to the first `…`.
//!
//! What the test replaces, named by a `<!-- tour: … -->` comment before a block:
//! `skip` blocks are not run (the build and the full test suite; a production
//! PostgreSQL example); the test starts the server itself (in the README,
//! `cargo run --release -- serve` in a first terminal) on a free port and
//! rewrites `127.0.0.1:8080` / `:8081` to its ports; a `background` block (the
//! gateway, "in a third terminal") runs in the background until it listens; the
//! `browser` block (copying the code from the address bar) is replaced by a
//! sign-in and "Yes, Allow" over HTTP, with the form fields a browser would send.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Server};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Run,
    Background,
    Browser,
    Skip,
}

#[derive(Debug)]
struct Block {
    mode: Mode,
    code: String,
    /// The README line of its opening fence.
    line: usize,
}

fn blocks(readme: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = readme.lines().enumerate();
    let mut last = "";
    while let Some((n, line)) = lines.next() {
        if line.trim_end() == "```sh" {
            let mode = match last.strip_prefix("<!-- tour: ") {
                None => Mode::Run,
                Some(rest) if rest.starts_with("skip") => Mode::Skip,
                Some(rest) if rest.starts_with("background") => Mode::Background,
                Some(rest) if rest.starts_with("browser") => Mode::Browser,
                Some(other) => panic!("README line {n}: unknown tour mode {other:?}"),
            };
            let code: Vec<&str> = lines
                .by_ref()
                .map(|(_, l)| l)
                .take_while(|l| l.trim_end() != "```")
                .collect();
            out.push(Block {
                mode,
                code: code.join("\n") + "\n",
                line: n + 1,
            });
        }
        if !line.trim().is_empty() {
            last = line;
        }
    }
    out
}

/// One bash, fed a block at a time; its output (stderr too) comes back line by
/// line until the marker the test echoes after each block.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Shell {
    fn start(dir: &Path) -> Shell {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .env_remove("GATEHOUSE_DATABASE_URL")
            .env_remove("GATEHOUSE_KEY_FILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("bash");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    return;
                }
            }
        });
        let mut shell = Shell {
            child,
            stdin,
            lines,
        };
        shell.send("exec 2>&1\nset -euo pipefail\nshopt -s expand_aliases\n");
        shell
    }

    fn send(&mut self, text: &str) {
        self.stdin.write_all(text.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Runs `command`, returning what it printed; panics with it if the shell
    /// exits (`set -e`: a command failed) or it takes over a minute.
    fn run(&mut self, command: &str, what: &str) -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let marker = format!(
            "@@tour-{}@@",
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        self.send(&format!("{command}\necho {marker}\n"));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut output = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // Output without a final newline (curl's) ends on the marker's line.
                Ok(line) if line.ends_with(&marker) => {
                    output.push_str(line.trim_end_matches(&marker));
                    return output;
                }
                Ok(line) => {
                    output.push_str(&line);
                    output.push('\n');
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{what} did not finish within a minute; it printed:\n{output}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("{what} failed (the shell exited); it printed:\n{output}")
                }
            }
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // The shell and what it started in the background (the gateway).
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The output comments of a block: what it must print, up to the first `…`.
fn expectations(code: &str) -> Vec<&str> {
    code.lines()
        .filter_map(|l| l.trim_start().strip_prefix("# "))
        .filter(|l| l.starts_with('{') || l.starts_with("HTTP/"))
        .map(|l| l.split('…').next().unwrap_or(l))
        .collect()
}

#[test]
fn the_readme_tour_runs_as_written_from_any_directory() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let blocks = blocks(&readme);
    assert!(blocks.iter().filter(|b| b.mode == Mode::Run).count() >= 10);

    // The clone: its release binary is the binary under test.
    let clone = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(clone.path().join("target/release")).unwrap();
    std::os::unix::fs::symlink(BIN, clone.path().join("target/release/gatehouse")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let server = Server::start(clone.path(), &[]);
    let base = server.url("");
    let gateway = format!("127.0.0.1:{}", free_port());

    let mut shell = Shell::start(clone.path());
    let scripts = tempfile::tempdir().unwrap();
    let mut first = true;
    let mut previous_output = String::new();
    for (i, block) in blocks.iter().enumerate() {
        let what = format!("the README's block at line {}", block.line);
        let code = block
            .code
            .replace("http://127.0.0.1:8080", &base)
            .replace("127.0.0.1:8081", &gateway);
        let script = scripts.path().join(format!("{i}.sh"));
        std::fs::write(&script, &code).unwrap();
        let output = match block.mode {
            Mode::Skip => continue,
            Mode::Run => shell.run(&format!("source {} </dev/null", script.display()), &what),
            Mode::Background => {
                let log = scripts.path().join(format!("{i}.log"));
                shell.run(
                    &format!(
                        "( source {} ) >{} 2>&1 </dev/null &",
                        script.display(),
                        log.display()
                    ),
                    &what,
                );
                wait_listening(&gateway, &log);
                String::new()
            }
            Mode::Browser => {
                let url = previous_output
                    .lines()
                    .rev()
                    .find(|l| l.contains("/connect/authorize?"))
                    .unwrap_or_else(|| panic!("{what}: no authorization URL before it"))
                    .trim()
                    .to_owned();
                let code = sign_in_and_allow(&base, &url, "ana@acme.test", "correct horse battery");
                shell.run(&format!("CODE='{code}'"), &what)
            }
        };
        for expected in expectations(&code) {
            assert!(
                output.contains(expected),
                "{what} should print `{expected}`; it printed:\n{output}"
            );
        }
        if first {
            // After the first block, every command must work from anywhere.
            shell.run(&format!("cd {}", elsewhere.path().display()), "cd");
            first = false;
        }
        previous_output = output;
    }
    let stray: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert!(
        stray.is_empty(),
        "the tour wrote files where it ran: {stray:?}"
    );
    drop(server);
}

fn wait_listening(addr: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the background block never listened on {addr}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a person does in the browser: open the URL, sign in, "Yes, Allow";
/// returns the `code` the browser lands with at the redirect URI.
fn sign_in_and_allow(base: &str, url: &str, email: &str, password: &str) -> String {
    let client = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let absolute = |loc: &str| {
        if loc.starts_with("http") {
            loc.to_owned()
        } else {
            format!("{base}{loc}")
        }
    };
    // Follows redirects on the server; stops at the app's callback.
    let follow = |mut r: reqwest::blocking::Response| -> Result<String, String> {
        loop {
            if !r.status().is_redirection() {
                assert!(r.status().is_success(), "{}: {}", r.status(), r.url());
                return Ok(r.text().unwrap());
            }
            let loc = r.headers()["location"].to_str().unwrap().to_owned();
            if loc.starts_with("http://localhost:3000/callback") {
                return Err(loc);
            }
            r = client.get(absolute(&loc)).send().unwrap();
        }
    };
    let login = follow(client.get(url).send().unwrap()).expect("a sign-in page");
    let (action, mut fields) = form(&login);
    fields.push(("email".into(), email.into()));
    fields.push(("password".into(), password.into()));
    let consent = follow(client.post(absolute(&action)).form(&fields).send().unwrap())
        .expect("a consent page");
    assert!(consent.contains("Yes, Allow"), "{consent}");
    let (action, mut fields) = form(&consent);
    fields.push(("decision".into(), "allow".into()));
    let landed = follow(client.post(absolute(&action)).form(&fields).send().unwrap())
        .expect_err("a redirect to the app");
    let landed = reqwest::Url::parse(&landed).unwrap();
    landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code")
}

/// The first POST form's action and hidden fields.
fn form(html: &str) -> (String, Vec<(String, String)>) {
    let start = html.find("<form method=\"post\"").expect("a form");
    let html = &html[start..];
    let end = html.find("</form>").unwrap();
    let html = &html[..end];
    let action = attr(html, "action").expect("an action");
    let mut fields = Vec::new();
    for input in html.split("<input").skip(1) {
        if input.contains("type=\"hidden\"") {
            fields.push((attr(input, "name").unwrap(), attr(input, "value").unwrap()));
        }
    }
    (action, fields)
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(common::unescape_html(&tag[start..start + len]))
}

#[test]
fn every_shell_block_of_the_readme_is_in_the_tour_or_says_why_not() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for block in blocks(&readme) {
        // A placeholder like `X=...` cannot be pasted: only the browser step has one.
        let placeholder = block
            .code
            .lines()
            .any(|l| l.contains("=...") && !l.trim_start().starts_with('#'));
        assert!(
            !placeholder || block.mode == Mode::Browser,
            "README line {}: a placeholder to fill in by hand",
            block.line
        );
        assert!(
            !block.code.contains("../shared"),
            "README line {}: a path outside the repository",
            block.line
        );
    }
    assert!(
        !readme.contains("../shared/"),
        "the README links outside the repository"
    );
}
