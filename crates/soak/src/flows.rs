//! The kinds of traffic, each judging its own answers, and the fault watcher.
//!
//! A flow that loses an answer (a fault, a 5xx) drops what it held (a refresh
//! family, a victim app's secret) instead of guessing its state, so a later
//! judgment is never made on a state the loader does not know.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::Digest as _;

use crate::{Creds, Ctx, FaultReport, FaultState, Resp, lock, unix_now};

/// A refresh-token family the loader holds (taken out while a flow uses it).
pub struct Family {
    rt: String,
}

pub struct Victim {
    pub creds: Creds,
    pub user: usize,
    /// An admin change whose answer was lost: its secret is unknown now.
    pub lost: bool,
    /// The last change: when it was acknowledged, and by which server.
    pub changed: Option<(Instant, usize)>,
}

/// How long a change made on one instance may take to reach the others (their
/// caches follow the change feed): the same bound as an ending at the gateway.
const SPREAD: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Pools {
    /// Fresh gateway tokens of the machine app, with their `exp`.
    machine: VecDeque<(String, u64)>,
    /// Some of them, kept until they have expired.
    aging: VecDeque<(String, u64)>,
    /// Tokens the gateway was seen refusing after they were ended.
    ended: VecDeque<String>,
    families: Vec<Family>,
    /// Writes acknowledged: reference tokens and apps, with when.
    ledger_refs: Vec<(String, Instant)>,
    ledger_apps: Vec<(String, Instant)>,
    /// Ended-token checks still polling.
    pending: usize,
}

const RING: usize = 256;

fn push_ring<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() >= RING {
        q.pop_front();
    }
    q.push_back(v);
}

fn exp_of(jwt: &str) -> Option<u64> {
    let payload = jwt.split('.').nth(1)?;
    let v: serde_json::Value = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
    v["exp"].as_u64()
}

fn field(r: &Resp, name: &str) -> Option<String> {
    r.json()[name].as_str().map(str::to_owned)
}

pub async fn worker(ctx: Arc<Ctx>) {
    // Weights: what a busy installation sees most (token requests, gateway
    // calls), with every other kind often enough to be judged thousands of times.
    const KINDS: &[(u32, Kind)] = &[
        (10, Kind::CcBasic),
        (8, Kind::CcBody),
        (8, Kind::Introspect),
        (20, Kind::GwValid),
        (4, Kind::GwExpired),
        (4, Kind::GwEnded),
        (4, Kind::GwForged),
        (2, Kind::Login),
        (8, Kind::Refresh),
        (1, Kind::Reuse),
        (1, Kind::Revoke),
        (1, Kind::Admin),
        (6, Kind::Garbage),
    ];
    let total: u32 = KINDS.iter().map(|k| k.0).sum();
    while Instant::now() < ctx.deadline {
        let mut n = fastrand::u32(..total);
        let mut kind = Kind::GwValid;
        for (w, k) in KINDS {
            if n < *w {
                kind = *k;
                break;
            }
            n -= w;
        }
        match kind {
            Kind::CcBasic => {
                machine_token(&ctx, true).await;
            }
            Kind::CcBody => {
                machine_token(&ctx, false).await;
            }
            Kind::Introspect => introspect(&ctx).await,
            Kind::GwValid => gw_valid(&ctx).await,
            Kind::GwExpired => gw_expired(&ctx).await,
            Kind::GwEnded => gw_ended(&ctx).await,
            Kind::GwForged => gw_forged(&ctx).await,
            Kind::Login => login(&ctx).await,
            Kind::Refresh => refresh(&ctx, Ending::None).await,
            Kind::Reuse => refresh(&ctx, Ending::Reuse).await,
            Kind::Revoke => refresh(&ctx, Ending::Revoke).await,
            Kind::Admin => admin(&ctx).await,
            Kind::Garbage => garbage(&ctx).await,
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    CcBasic,
    CcBody,
    Introspect,
    GwValid,
    GwExpired,
    GwEnded,
    GwForged,
    Login,
    Refresh,
    Reuse,
    Revoke,
    Admin,
    Garbage,
}

// ------------------------------------------------------------ token requests

/// A client credentials token: 200 with an access token, or a wrong answer.
async fn client_credentials(
    ctx: &Ctx,
    kind: &'static str,
    server: usize,
    creds: &Creds,
    scope: &str,
    basic: bool,
) -> Option<String> {
    let url = format!("{}/connect/token", ctx.server(server));
    let req = if basic {
        ctx.http
            .post(url)
            .basic_auth(&creds.client_id, Some(&creds.client_secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
    } else {
        ctx.http.post(url).form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", creds.client_secret.as_str()),
        ])
    };
    let (r, lat) = ctx.send(kind, Some(server), req).await?;
    if !ctx.judge(kind, &r, lat, 200, "client credentials") {
        return None;
    }
    field(&r, "access_token")
}

async fn machine_token(ctx: &Ctx, basic: bool) -> Option<String> {
    let kind = if basic { "cc_basic" } else { "cc_body" };
    let c = &ctx.cfg;
    let t = client_credentials(
        ctx,
        kind,
        ctx.any_server(),
        &c.machine,
        &c.gateway_scope,
        basic,
    )
    .await?;
    if let Some(exp) = exp_of(&t) {
        let mut p = lock(&ctx.pools);
        push_ring(&mut p.machine, (t.clone(), exp));
        if fastrand::u8(..20) == 0 {
            push_ring(&mut p.aging, (t.clone(), exp));
        }
    }
    Some(t)
}

/// A machine token with at least 3 s to live (a new one when none is).
async fn fresh_token(ctx: &Ctx) -> Option<String> {
    let now = unix_now();
    let cached = {
        let p = lock(&ctx.pools);
        let fresh: Vec<&(String, u64)> = p.machine.iter().filter(|(_, e)| *e > now + 3).collect();
        (!fresh.is_empty()).then(|| fresh[fastrand::usize(..fresh.len())].0.clone())
    };
    match cached {
        Some(t) => Some(t),
        None => machine_token(ctx, true).await,
    }
}

// ------------------------------------------------------------ introspection

async fn introspect_one(ctx: &Ctx, kind: &'static str, api: &Creds, token: &str, active: bool) {
    let s = ctx.any_server();
    let req = ctx
        .http
        .post(format!("{}/connect/introspect", ctx.server(s)))
        .basic_auth(&api.client_id, Some(&api.client_secret))
        .form(&[("token", token)]);
    let Some((r, lat)) = ctx.send(kind, Some(s), req).await else {
        return;
    };
    let got = r.json()["active"].as_bool();
    if r.status == 200 && got == Some(active) {
        ctx.ok(kind, lat);
    } else {
        ctx.wrong(
            kind,
            lat,
            format!(
                "introspection: {} active={got:?}, expected active={active}",
                r.status
            ),
        );
    }
}

/// A reference token issued on one instance is active on any; a fresh JWT is
/// active; an ended one is not.
async fn introspect(ctx: &Ctx) {
    let c = &ctx.cfg;
    match fastrand::u8(..3) {
        0 => {
            if let Some(t) = fresh_token(ctx).await {
                introspect_one(ctx, "introspect", &c.api, &t, true).await;
            }
        }
        1 => {
            let ended = {
                let p = lock(&ctx.pools);
                (!p.ended.is_empty()).then(|| p.ended[fastrand::usize(..p.ended.len())].clone())
            };
            if let Some(t) = ended {
                introspect_one(ctx, "introspect", &c.api, &t, false).await;
            }
        }
        _ => {
            let s = ctx.any_server();
            let Some(t) =
                client_credentials(ctx, "token_reference", s, &c.ref_app, &c.ref_scope, true).await
            else {
                return;
            };
            lock(&ctx.pools)
                .ledger_refs
                .push((t.clone(), Instant::now()));
            introspect_one(ctx, "introspect", &c.ref_api, &t, true).await;
        }
    }
}

// ------------------------------------------------------------ gateway

async fn gateway(ctx: &Ctx, kind: &'static str, token: &str) -> Option<(Resp, Duration)> {
    let req = ctx
        .http
        .get(format!("{}{}", ctx.cfg.gateway, ctx.cfg.gateway_path))
        .bearer_auth(token);
    ctx.send(kind, None, req).await
}

async fn gw_valid(ctx: &Ctx) {
    if let Some(t) = fresh_token(ctx).await
        && let Some((r, lat)) = gateway(ctx, "gw_valid", &t).await
    {
        ctx.judge("gw_valid", &r, lat, 200, "a valid token at the gateway");
    }
}

async fn gw_expired(ctx: &Ctx) {
    let limit = unix_now().saturating_sub(ctx.cfg.leeway_secs + 2);
    let t = {
        let p = lock(&ctx.pools);
        let old: Vec<&(String, u64)> = p.aging.iter().filter(|(_, e)| *e < limit).collect();
        (!old.is_empty()).then(|| old[fastrand::usize(..old.len())].0.clone())
    };
    match t {
        Some(t) => {
            if let Some((r, lat)) = gateway(ctx, "gw_expired", &t).await {
                ctx.judge(
                    "gw_expired",
                    &r,
                    lat,
                    401,
                    "an expired token at the gateway",
                );
            }
        }
        // None has expired yet (the first minute): a valid call instead.
        None => gw_valid(ctx).await,
    }
}

async fn gw_ended(ctx: &Ctx) {
    let t = {
        let p = lock(&ctx.pools);
        (!p.ended.is_empty()).then(|| p.ended[fastrand::usize(..p.ended.len())].clone())
    };
    match t {
        Some(t) => {
            if let Some((r, lat)) = gateway(ctx, "gw_ended", &t).await {
                ctx.judge("gw_ended", &r, lat, 401, "an ended token at the gateway");
            }
        }
        None => gw_forged(ctx).await,
    }
}

/// A valid token made invalid: a signature byte changed, the claims changed
/// under the old signature, `alg: none`, an unknown `kid`, or junk.
async fn gw_forged(ctx: &Ctx) {
    let Some(t) = fresh_token(ctx).await else {
        return;
    };
    let parts: Vec<&str> = t.split('.').collect();
    let [h, p, s] = parts.as_slice() else { return };
    let forged = match fastrand::u8(..5) {
        0 => {
            let mut sig = B64.decode(s).unwrap_or_default();
            if let Some(b) = sig.get_mut(7) {
                *b ^= 0x5a;
            }
            format!("{h}.{p}.{}", B64.encode(sig))
        }
        1 => {
            let mut claims: serde_json::Value =
                serde_json::from_slice(&B64.decode(p).unwrap_or_default()).unwrap_or_default();
            claims["scope"] = "cfgateway admin".into();
            claims["sub"] = "someone-else".into();
            format!("{h}.{}.{s}", B64.encode(claims.to_string()))
        }
        2 => format!("{}.{p}.", B64.encode(r#"{"alg":"none","typ":"at+jwt"}"#)),
        3 => {
            let mut header: serde_json::Value =
                serde_json::from_slice(&B64.decode(h).unwrap_or_default()).unwrap_or_default();
            header["kid"] = "no-such-key".into();
            format!("{}.{p}.{s}", B64.encode(header.to_string()))
        }
        _ => format!(
            "{}.{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
    };
    if let Some((r, lat)) = gateway(ctx, "gw_forged", &forged).await {
        ctx.judge("gw_forged", &r, lat, 401, "a forged token at the gateway");
    }
}

/// After an ending was acknowledged at `acked`, polls the gateway until it
/// refuses `token`: a request sent 1 s or more after the ending and accepted is
/// an error. The lag is when the first refused request was sent (its answer's
/// own latency on a loaded machine is not the gateway's doing).
fn spawn_ended_check(ctx: &Arc<Ctx>, token: String, acked: Instant) {
    lock(&ctx.pools).pending += 1;
    let ctx = ctx.clone();
    tokio::spawn(async move {
        loop {
            let sent = acked.elapsed();
            let Some((r, lat)) = gateway(&ctx, "ended_refused", &token).await else {
                break;
            };
            match r.status {
                401 => {
                    let ms = u64::try_from(sent.as_millis()).unwrap_or(u64::MAX);
                    lock(&ctx.stats).ended_lag_ms.push(ms);
                    ctx.ok("ended_refused", lat);
                    push_ring(&mut lock(&ctx.pools).ended, token);
                    break;
                }
                200 if sent < Duration::from_secs(1) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => {
                    ctx.wrong(
                        "ended_refused",
                        lat,
                        format!(
                            "{} to a request sent {} ms after the ending",
                            r.status,
                            sent.as_millis()
                        ),
                    );
                    break;
                }
            }
        }
        lock(&ctx.pools).pending -= 1;
    });
}

/// After a secret rotation, the old secret must fail everywhere within 1 s (of
/// when the request was sent, as above).
fn spawn_old_secret_check(ctx: &Arc<Ctx>, old: Creds, acked: Instant) {
    lock(&ctx.pools).pending += 1;
    let ctx = ctx.clone();
    tokio::spawn(async move {
        loop {
            let s = ctx.any_server();
            let req = ctx
                .http
                .post(format!("{}/connect/token", ctx.server(s)))
                .basic_auth(&old.client_id, Some(&old.client_secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", ctx.cfg.gateway_scope.as_str()),
                ]);
            let sent = acked.elapsed();
            let Some((r, lat)) = ctx.send("old_secret_refused", Some(s), req).await else {
                break;
            };
            match r.status {
                401 => {
                    ctx.ok("old_secret_refused", lat);
                    break;
                }
                200 if sent < Duration::from_secs(1) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => {
                    ctx.wrong(
                        "old_secret_refused",
                        lat,
                        format!(
                            "{} to a request sent {} ms after the rotation",
                            r.status,
                            sent.as_millis()
                        ),
                    );
                    break;
                }
            }
        }
        lock(&ctx.pools).pending -= 1;
    });
}

pub async fn drain_checks(ctx: &Ctx) {
    for _ in 0..500 {
        if lock(&ctx.pools).pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------ people

fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(
        page[start..end]
            .replace("&amp;", "&")
            .replace("&#x3D;", "=")
            .replace("&#61;", "=")
            .replace("&quot;", "\""),
    )
}

fn cookie_header(jar: &[(String, String)]) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn merge(jar: &mut Vec<(String, String)>, r: &Resp) {
    for (k, v) in &r.cookies {
        jar.retain(|(n, _)| n != k);
        if !v.is_empty() {
            jar.push((k.clone(), v.clone()));
        }
    }
}

/// A new browser: authorize (login page), sign in, allow on the consent page
/// (`prompt=consent`), exchange the code with PKCE; the family joins the pool.
async fn login(ctx: &Arc<Ctx>) {
    let Ok(_permit) = ctx.logins.try_acquire() else {
        return gw_valid(ctx).await;
    };
    let c = &ctx.cfg;
    let s = ctx.any_server();
    let base = ctx.server(s).to_owned();
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = B64.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let Ok(mut url) = reqwest::Url::parse(&format!("{base}/connect/authorize")) else {
        return;
    };
    url.query_pairs_mut()
        .append_pair("client_id", &c.web.client_id)
        .append_pair("redirect_uri", &c.redirect_uri)
        .append_pair("scope", &c.web_scope)
        .append_pair("response_type", "code")
        .append_pair("state", "soak")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("prompt", "consent");
    let query = url.query().unwrap_or_default().to_owned();
    let mut jar = Vec::new();

    let Some((r, lat)) = ctx.send("login", Some(s), ctx.http.get(url)).await else {
        return;
    };
    let Some(csrf) = hidden(&r.body, "csrf_token").filter(|_| r.status == 200) else {
        ctx.wrong(
            "login",
            lat,
            format!("authorize: {} without a login form", r.status),
        );
        return;
    };
    ctx.ok("login", lat);
    merge(&mut jar, &r);
    let req = ctx
        .http
        .post(format!("{base}/login"))
        .header("cookie", cookie_header(&jar))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("request", query.as_str()),
            ("email", c.email.as_str()),
            ("password", c.password.as_str()),
        ]);
    let Some((r, lat)) = ctx.send("login", Some(s), req).await else {
        return;
    };
    let Some(csrf) = hidden(&r.body, "csrf_token")
        .filter(|_| r.status == 200 && r.body.contains("action=\"/consent\""))
    else {
        ctx.wrong(
            "login",
            lat,
            format!("sign-in: {} without the consent form", r.status),
        );
        return;
    };
    ctx.ok("login", lat);
    merge(&mut jar, &r);
    let req = ctx
        .http
        .post(format!("{base}/consent"))
        .header("cookie", cookie_header(&jar))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("request", query.as_str()),
            ("decision", "allow"),
        ]);
    let Some((r, lat)) = ctx.send("login", Some(s), req).await else {
        return;
    };
    let code = r
        .location
        .as_deref()
        .filter(|l| l.starts_with(&c.redirect_uri))
        .and_then(|l| reqwest::Url::parse(l).ok())
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        });
    let Some(code) = code.filter(|_| r.status == 303) else {
        ctx.wrong(
            "login",
            lat,
            format!("consent: {} without a code", r.status),
        );
        return;
    };
    ctx.ok("login", lat);
    drop(_permit);

    let s2 = ctx.any_server();
    let req = ctx
        .http
        .post(format!("{}/connect/token", ctx.server(s2)))
        .basic_auth(&c.web.client_id, Some(&c.web.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ]);
    let Some((r, lat)) = ctx.send("code_exchange", Some(s2), req).await else {
        return;
    };
    if !ctx.judge("code_exchange", &r, lat, 200, "code exchange") {
        return;
    }
    let (Some(at), Some(rt)) = (field(&r, "access_token"), field(&r, "refresh_token")) else {
        ctx.wrong("code_exchange", lat, "no access or refresh token".into());
        return;
    };
    if let Some((r, lat)) = gateway(ctx, "gw_valid", &at).await {
        ctx.judge(
            "gw_valid",
            &r,
            lat,
            200,
            "a new sign-in's token at the gateway",
        );
    }
    lock(&ctx.pools).families.push(Family { rt });
}

#[derive(Clone, Copy, PartialEq)]
enum Ending {
    None,
    /// Reuse the refresh token just rotated: the family ends.
    Reuse,
    /// Revoke the refresh token (RFC 7009): the family ends.
    Revoke,
}

async fn refresh_once(ctx: &Ctx, kind: &'static str, rt: &str) -> Option<(Resp, Duration)> {
    let s = ctx.any_server();
    let c = &ctx.cfg;
    let req = ctx
        .http
        .post(format!("{}/connect/token", ctx.server(s)))
        .basic_auth(&c.web.client_id, Some(&c.web.client_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)]);
    ctx.send(kind, Some(s), req).await
}

fn is_invalid_grant(r: &Resp) -> bool {
    r.status == 400 && r.json()["error"] == "invalid_grant"
}

/// Rotates a family (the new access token must pass the gateway); then, for an
/// ending, reuses the old refresh token or revokes the new one and checks the
/// family is over: refresh refused, access token refused at the gateway within 1 s.
async fn refresh(ctx: &Arc<Ctx>, ending: Ending) {
    let family = {
        let mut p = lock(&ctx.pools);
        // Keep the pool from growing without bound: end families when it is large.
        let n = p.families.len();
        (n > 0).then(|| p.families.swap_remove(fastrand::usize(..n)))
    };
    let Some(family) = family else {
        return login(ctx).await;
    };
    let ending = if ending == Ending::None && lock(&ctx.pools).families.len() > 200 {
        Ending::Revoke
    } else {
        ending
    };
    let Some((r, lat)) = refresh_once(ctx, "refresh", &family.rt).await else {
        return;
    };
    if !ctx.judge("refresh", &r, lat, 200, "a refresh of a live family") {
        return;
    }
    let (Some(at), Some(rt)) = (field(&r, "access_token"), field(&r, "refresh_token")) else {
        ctx.wrong("refresh", lat, "no access or refresh token".into());
        return;
    };
    let Some((g, glat)) = gateway(ctx, "gw_valid", &at).await else {
        return;
    };
    if !ctx.judge(
        "gw_valid",
        &g,
        glat,
        200,
        "a refreshed token at the gateway",
    ) {
        return;
    }
    match ending {
        Ending::None => lock(&ctx.pools).families.push(Family { rt }),
        Ending::Reuse => {
            let Some((r, lat)) = refresh_once(ctx, "refresh_reuse", &family.rt).await else {
                return;
            };
            if !is_invalid_grant(&r) {
                ctx.wrong(
                    "refresh_reuse",
                    lat,
                    format!("reuse of a rotated refresh token: {}", r.status),
                );
                return;
            }
            ctx.ok("refresh_reuse", lat);
            let acked = Instant::now();
            spawn_ended_check(ctx, at, acked);
            let Some((r, lat)) = refresh_once(ctx, "refresh_reuse", &rt).await else {
                return;
            };
            if is_invalid_grant(&r) {
                ctx.ok("refresh_reuse", lat);
            } else {
                ctx.wrong(
                    "refresh_reuse",
                    lat,
                    format!("the family's newest token after reuse: {}", r.status),
                );
            }
        }
        Ending::Revoke => {
            let c = &ctx.cfg;
            let s = ctx.any_server();
            let req = ctx
                .http
                .post(format!("{}/connect/revocation", ctx.server(s)))
                .basic_auth(&c.web.client_id, Some(&c.web.client_secret))
                .form(&[("token", rt.as_str()), ("token_type_hint", "refresh_token")]);
            let Some((r, lat)) = ctx.send("revoke", Some(s), req).await else {
                return;
            };
            if !ctx.judge("revoke", &r, lat, 200, "revocation") {
                return;
            }
            spawn_ended_check(ctx, at, Instant::now());
            let Some((r, lat)) = refresh_once(ctx, "revoke", &rt).await else {
                return;
            };
            if is_invalid_grant(&r) {
                ctx.ok("revoke", lat);
            } else {
                ctx.wrong(
                    "revoke",
                    lat,
                    format!("a revoked refresh token: {}", r.status),
                );
            }
        }
    }
}

// ------------------------------------------------------------ admin API

async fn admin_token(ctx: &Ctx) -> Option<String> {
    let mut t = ctx.admin_token.lock().await;
    if let Some((tok, at)) = t.as_ref()
        && at.elapsed() < Duration::from_secs(600)
    {
        return Some(tok.clone());
    }
    let tok = client_credentials(
        ctx,
        "cc_admin",
        ctx.any_server(),
        &ctx.cfg.admin,
        "gatehouse:admin",
        true,
    )
    .await?;
    *t = Some((tok.clone(), Instant::now()));
    Some(tok)
}

/// Rotates a victim app's secret or changes its on-behalf user through the admin
/// API (its token must end at the gateway within 1 s, an old secret everywhere),
/// or registers an app (a write the ledger checks after each fault).
async fn admin(ctx: &Arc<Ctx>) {
    let c = &ctx.cfg;
    let Some(admin) = admin_token(ctx).await else {
        return;
    };
    let s = ctx.any_server();
    let base = ctx.server(s).to_owned();
    if fastrand::u8(..5) == 0 && lock(&ctx.pools).ledger_apps.len() < 100 {
        let body = serde_json::json!({
            "grant_type": "client_credentials",
            "name": format!("soak {}", uuid::Uuid::new_v4().simple()),
            "on_behalf_of": c.users[0],
            "scopes": [c.gateway_scope],
        });
        let req = ctx
            .http
            .post(format!("{base}/api/v1/apps"))
            .bearer_auth(&admin)
            .json(&body);
        let Some((r, lat)) = ctx.send("admin_register_app", Some(s), req).await else {
            return;
        };
        if ctx.judge("admin_register_app", &r, lat, 201, "app registration") {
            match r.json()["client_id"].as_str() {
                Some(id) => lock(&ctx.pools)
                    .ledger_apps
                    .push((id.to_owned(), Instant::now())),
                None => ctx.wrong("admin_register_app", lat, "no client_id".into()),
            }
        }
        return;
    }
    let i = fastrand::usize(..ctx.victims.len());
    let Ok(mut v) = ctx.victims[i].try_lock() else {
        return gw_valid(ctx).await;
    };
    if v.lost {
        return gw_valid(ctx).await;
    }
    let scope = c.gateway_scope.clone();
    // Another instance may still issue tokens of the app's previous credential
    // generation (which the gateway refuses) until the change has reached it.
    if let Some((at, by)) = v.changed
        && by != s
    {
        tokio::time::sleep(SPREAD.saturating_sub(at.elapsed())).await;
    }
    let since = v.changed.map_or_else(
        || "no change yet".to_owned(),
        |(at, by)| {
            format!(
                "asked of server {s} {} ms after the last change, made on server {by}",
                at.elapsed().as_millis()
            )
        },
    );
    let Some(tok) = client_credentials(ctx, "admin_victim_token", s, &v.creds, &scope, true).await
    else {
        return;
    };
    let Some((g, glat)) = gateway(ctx, "gw_valid", &tok).await else {
        return;
    };
    if !ctx.judge(
        "gw_valid",
        &g,
        glat,
        200,
        &format!("a victim app's token at the gateway ({since})"),
    ) {
        return;
    }
    // From here the change may be made without our hearing of it.
    v.lost = true;
    let id = v.creds.client_id.clone();
    if fastrand::bool() {
        let req = ctx
            .http
            .post(format!("{base}/api/v1/apps/{id}/secret"))
            .bearer_auth(&admin);
        let Some((r, lat)) = ctx.send("admin_rotate_secret", Some(s), req).await else {
            return;
        };
        if !ctx.judge("admin_rotate_secret", &r, lat, 200, "secret rotation") {
            return;
        }
        let acked = Instant::now();
        v.changed = Some((acked, s));
        let Some(secret) = field(&r, "client_secret") else {
            return;
        };
        let old = std::mem::replace(&mut v.creds.client_secret, secret);
        spawn_old_secret_check(
            ctx,
            Creds {
                client_id: id,
                client_secret: old,
            },
            acked,
        );
        spawn_ended_check(ctx, tok, acked);
    } else {
        let user = (v.user + 1) % c.users.len();
        let req = ctx
            .http
            .put(format!("{base}/api/v1/apps/{id}/on-behalf-of"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({ "email": c.users[user] }));
        let Some((r, lat)) = ctx.send("admin_on_behalf", Some(s), req).await else {
            return;
        };
        if !ctx.judge("admin_on_behalf", &r, lat, 200, "on-behalf change") {
            return;
        }
        v.user = user;
        v.changed = Some((Instant::now(), s));
        spawn_ended_check(ctx, tok, Instant::now());
    }
    v.lost = false;
    // The app works at once with what it holds now.
    let creds = v.creds.clone();
    if client_credentials(ctx, "admin_victim_token", s, &creds, &scope, true)
        .await
        .is_none()
    {
        v.lost = true;
    }
}

// ------------------------------------------------------------ garbage

/// Requests no client should send: each must be a 4xx, never a 5xx or a success.
async fn garbage(ctx: &Ctx) {
    let s = ctx.any_server();
    let base = ctx.server(s).to_owned();
    let form = "application/x-www-form-urlencoded";
    let h = &ctx.http;
    let (req, to_gateway) = match fastrand::u8(..11) {
        0 => (h.post(format!("{base}/connect/token")).header("content-type", form).body("grant_type=%zz&&=&scope=%"), false),
        1 => (
            h.post(format!("{base}/connect/token"))
                .header("authorization", "Basic !!!not-base64!!!")
                .form(&[("grant_type", "client_credentials")]),
            false,
        ),
        2 => (
            h.post(format!("{base}/connect/token"))
                .header("content-type", form)
                .body(format!("grant_type=client_credentials&scope={}", "x".repeat(300_000))),
            false,
        ),
        3 => (h.post(format!("{base}/connect/token")).header("content-type", "application/json").body("{}"), false),
        4 => (h.get(format!("{base}/connect/authorize?client_id=nope&response_type=code&redirect_uri=https%3A%2F%2Fevil.test%2F")), false),
        5 => (h.post(format!("{base}/connect/introspect")).form(&[("token", "x")]), false),
        6 => (h.post(format!("{base}/api/v1/apps")).bearer_auth("garbage").body("{not json"), false),
        7 => (
            h.get(format!("{base}/api/v1/apps/%00%ff..%2f")).bearer_auth(uuid::Uuid::new_v4().to_string()),
            false,
        ),
        8 => (
            h.post(format!("{base}/connect/token")).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", uuid::Uuid::new_v4().to_string().as_str()),
                ("client_secret", "wrong"),
            ]),
            false,
        ),
        9 => (h.get(format!("{}/v1/products/%2e%2e/%2e%2e/admin", ctx.cfg.gateway)), true),
        _ => (h.post(format!("{base}/login")).form(&[("email", "x"), ("password", "y")]), false),
    };
    if let Some((r, lat)) = ctx.send("garbage", (!to_gateway).then_some(s), req).await {
        if (400..500).contains(&r.status) {
            ctx.ok("garbage", lat);
        } else {
            let body: String = r.body.chars().take(120).collect();
            ctx.wrong(
                "garbage",
                lat,
                format!("garbage answered {} {body}", r.status),
            );
        }
    }
}

// ------------------------------------------------------------ faults

/// Follows the fault file: when a fault starts, 503s and the killed instance's
/// lost connections become explained; when it ends, times the recovery (a token
/// request succeeding on every instance) and checks the ledger.
pub async fn watch_faults(ctx: Arc<Ctx>) {
    let mut current: Option<(String, Instant)> = None;
    loop {
        let now = Instant::now();
        if current.is_none() && now > ctx.deadline {
            return;
        }
        let named = tokio::fs::read_to_string(&ctx.cfg.fault_file)
            .await
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        match (&current, named) {
            (None, Some(name)) => {
                eprintln!("[soak] fault: {name}");
                // Tells the script the fault is seen: it waits for this before acting.
                let _ = tokio::fs::write(format!("{}.seen", ctx.cfg.fault_file), &name).await;
                let killed = name
                    .strip_prefix("kill ")
                    .and_then(|n| n.trim().parse().ok());
                *lock(&ctx.fault) = FaultState {
                    active: Some(name.clone()),
                    tolerate_until: None,
                    killed,
                    pg_down: name.starts_with("pg"),
                };
                ctx.fault_503.store(0, Ordering::Relaxed);
                ctx.fault_5xx.store(0, Ordering::Relaxed);
                ctx.fault_down.store(0, Ordering::Relaxed);
                current = Some((name, now));
            }
            (Some((name, t0)), None) => {
                let lasted = t0.elapsed();
                {
                    let mut f = lock(&ctx.fault);
                    f.active = None;
                    f.tolerate_until = Some(Instant::now() + Duration::from_secs(5));
                }
                let recovery = recover(&ctx).await;
                let (checked, lost) = check_ledger(&ctx, *t0).await;
                let report = FaultReport {
                    name: name.clone(),
                    started_s: t0.duration_since(ctx.started).as_secs_f64(),
                    lasted_ms: u64::try_from(lasted.as_millis()).unwrap_or(u64::MAX),
                    recovery_ms: recovery.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    unavailable_503: ctx.fault_503.load(Ordering::Relaxed),
                    other_5xx: ctx.fault_5xx.load(Ordering::Relaxed),
                    down_conn: ctx.fault_down.load(Ordering::Relaxed),
                    ledger_checked: checked,
                    ledger_lost: lost,
                };
                eprintln!("[soak] fault over: {report:?}");
                lock(&ctx.faults).push(report);
                current = None;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Time until a token request succeeds on every instance (None: not in 30 s).
async fn recover(ctx: &Ctx) -> Option<Duration> {
    let t0 = Instant::now();
    let c = &ctx.cfg;
    let mut pending: Vec<usize> = (0..c.servers.len()).collect();
    while t0.elapsed() < Duration::from_secs(30) {
        let mut still = Vec::new();
        for s in pending {
            let r = ctx
                .http
                .post(format!("{}/connect/token", ctx.server(s)))
                .basic_auth(&c.machine.client_id, Some(&c.machine.client_secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", c.gateway_scope.as_str()),
                ])
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if !matches!(r, Ok(ref r) if r.status() == 200) {
                still.push(s);
            }
        }
        if still.is_empty() {
            return Some(t0.elapsed());
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Every app and a sample of the reference tokens acknowledged before `t0` must
/// still be there: (checked, lost).
async fn check_ledger(ctx: &Ctx, t0: Instant) -> (u64, u64) {
    let (refs, apps) = {
        let p = lock(&ctx.pools);
        let before: Vec<&(String, Instant)> =
            p.ledger_refs.iter().filter(|(_, at)| *at < t0).collect();
        // The last 100 before the fault (the ones most at risk) and 100 others.
        let mut refs: Vec<String> = before
            .iter()
            .rev()
            .take(100)
            .map(|(t, _)| t.clone())
            .collect();
        for _ in 0..100 {
            if !before.is_empty() {
                refs.push(before[fastrand::usize(..before.len())].0.clone());
            }
        }
        let apps: Vec<String> = p
            .ledger_apps
            .iter()
            .filter(|(_, at)| *at < t0)
            .map(|(a, _)| a.clone())
            .collect();
        (refs, apps)
    };
    let c = &ctx.cfg;
    let (mut checked, mut lost) = (0, 0);
    for t in refs {
        let s = ctx.any_server();
        let req = ctx
            .http
            .post(format!("{}/connect/introspect", ctx.server(s)))
            .basic_auth(&c.ref_api.client_id, Some(&c.ref_api.client_secret))
            .form(&[("token", t.as_str())]);
        let Some((r, lat)) = ctx.send("ledger", Some(s), req).await else {
            continue;
        };
        checked += 1;
        if r.status == 200 && r.json()["active"] == true {
            ctx.ok("ledger", lat);
        } else {
            lost += 1;
            ctx.wrong(
                "ledger",
                lat,
                format!("an acknowledged reference token: {} {}", r.status, r.body),
            );
        }
    }
    let Some(admin) = admin_token(ctx).await else {
        return (checked, lost);
    };
    for id in apps {
        let s = ctx.any_server();
        let req = ctx
            .http
            .get(format!("{}/api/v1/apps/{id}", ctx.server(s)))
            .bearer_auth(&admin);
        let Some((r, lat)) = ctx.send("ledger", Some(s), req).await else {
            continue;
        };
        checked += 1;
        if r.status == 200 {
            ctx.ok("ledger", lat);
        } else {
            lost += 1;
            ctx.wrong("ledger", lat, format!("an acknowledged app: {}", r.status));
        }
    }
    (checked, lost)
}
