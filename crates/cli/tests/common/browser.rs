//! Shared by the browser tests: chromedriver on a free port, a headless Chromium
//! session, the screenshot folder, and users made with the CLI.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use thirtyfour::prelude::*;

pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_chromedriver() -> (Driver, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is not installed: apt-get install chromium chromium-driver (.ci/run does)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Driver(child), port)
}

pub fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn browser(driver_port: u16, profile: &Path) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary("/usr/bin/chromium").unwrap();
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1024,900",
    ] {
        caps.add_arg(arg).unwrap();
    }
    caps.add_arg(&format!("--user-data-dir={}", profile.display()))
        .unwrap();
    WebDriver::new(format!("http://127.0.0.1:{driver_port}"), caps)
        .await
        .unwrap()
}

/// `gatehouse user create … --password-stdin --json`.
pub fn user_with_password(dir: &Path, org: &str, email: &str, role: &str, password: &str) -> Value {
    super::json_with_stdin(
        dir,
        &[
            "user",
            "create",
            "--org",
            org,
            "--email",
            email,
            "--role",
            role,
            "--password-stdin",
            "--json",
        ],
        password,
    )
}

/// Waits (up to 20 s) for an element: the click that led here returns before the
/// next page has loaded.
pub async fn wait_for(web: &WebDriver, by: By) -> WebDriverResult<WebElement> {
    web.query(by)
        .wait(Duration::from_secs(20), Duration::from_millis(50))
        .first()
        .await
}

/// Makes the page `width` CSS pixels wide (a phone's 390 px too, below
/// Chromium's smallest window), through the DevTools protocol.
pub async fn viewport(web: &WebDriver, width: u32) -> WebDriverResult<()> {
    let phone = width < 600;
    viewport_of(web, width, if phone { 844 } else { 900 }).await
}

async fn viewport_of(web: &WebDriver, width: u32, height: u32) -> WebDriverResult<()> {
    let phone = width < 600;
    web.cdp()
        .send_raw(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": phone,
            }),
        )
        .await?;
    Ok(())
}

/// axe-core's script, installed from the npm registry by `.ci/run` into
/// `$GATEHOUSE_AXE_DIR` (default `~/.cache/gatehouse/axe`).
pub fn axe_source() -> String {
    let dir = std::env::var_os("GATEHOUSE_AXE_DIR").map_or_else(
        || Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/gatehouse/axe"),
        PathBuf::from,
    );
    let file = dir.join("node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "axe-core is not installed ({}: {e}): npm install --prefix {} axe-core@4 (.ci/run does)",
            file.display(),
            dir.display()
        )
    })
}

/// Runs axe-core on the current page; fails on any violation of impact
/// "serious" or "critical" (printing every violation it found).
pub async fn assert_accessible(web: &WebDriver, what: &str) -> WebDriverResult<()> {
    static AXE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let loaded = web
        .execute("return typeof window.axe === 'object';", vec![])
        .await?;
    if loaded.json().as_bool() != Some(true) {
        web.execute(AXE.get_or_init(axe_source).as_str(), vec![])
            .await?;
    }
    let ret = web
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
window.axe.run(document, { resultTypes: ['violations'] })
  .then(r => done(r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + ': ' + (n.failureSummary || '')),
  }))))
  .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));"#,
            vec![],
        )
        .await?;
    let violations = ret.json().as_array().cloned().unwrap_or_default();
    for v in &violations {
        eprintln!(
            "axe on {what}: {} ({}): {} {:?}",
            v["id"], v["impact"], v["help"], v["nodes"]
        );
    }
    let serious: Vec<&Value> = violations
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(
        serious.is_empty(),
        "axe-core: serious violations on {what}: {serious:#?}"
    );
    Ok(())
}

/// Screenshots of the current page at 1280 and 390 px wide
/// (`<dir>/<name>-1280.png`, `-390.png`), each checked with axe-core; leaves
/// the page 1280 px wide.
pub async fn shoot_and_check(web: &WebDriver, dir: &Path, name: &str) -> WebDriverResult<()> {
    for width in [1280_u32, 390] {
        viewport(web, width).await?;
        let inner = web.execute("return window.innerWidth;", vec![]).await?;
        assert_eq!(inner.json().as_u64(), Some(u64::from(width)), "{name}");
        // The whole page, as tall as it is (up to 8000 px).
        let tall = web
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await?;
        let tall = tall.json().as_u64().unwrap_or(900).clamp(600, 8000);
        viewport_of(web, width, u32::try_from(tall).unwrap_or(8000)).await?;
        web.screenshot(&dir.join(format!("{name}-{width}.png")))
            .await?;
        viewport(web, width).await?;
        assert_accessible(web, &format!("{name} at {width} px")).await?;
    }
    viewport(web, 1280).await
}
