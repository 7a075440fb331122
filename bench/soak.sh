#!/usr/bin/env bash
# Soak with mixed traffic and faults (issue 12 section 3), in three parts:
#   1. SQLite: one `gatehouse serve`, a `gatehouse gateway` in front of a real
#      upstream (crates/bench-hello), and the load generator (crates/soak) at
#      CONNECTIONS connections for MINUTES; a signing-key rotation half way.
#   2. SQLite disk full: a server whose database lives on a small tmpfs; the
#      tmpfs is filled: writes must fail with 503 + Retry-After, reads keep
#      working, the service recovers by itself when space returns, and
#      `PRAGMA integrity_check` is ok afterwards.
#   3. PostgreSQL (a private cluster started here with initdb/pg_ctl): two
#      instances on one database and the same load for MINUTES, with faults at
#      30 %, 50 % and 70 %: PostgreSQL restarted, instance 2 killed with -9 and
#      started again, signing keys rotated. The load generator judges 503 +
#      Retry-After while the database is down, times the recovery, and checks
#      that every write acknowledged before a fault is still there after it.
# The load generator judges every answer (any 5xx, any hang > 5 s, any wrong
# answer is an error) and reports p50/p99 per kind; this script samples the
# servers' and the gateway's RSS every 5 s and writes a Markdown report.
#
# Goals (the script exits 1 when one is missed): 0 errors; RSS growth from
# minute 3 to the last < 10 %, judged on each minute's lowest sample (RSS is
# sampled every 5 s; server and gateway; runs of 4 minutes or more);
# every ended token refused at the gateway within 1 s; per fault: recovery
# within 5 s, nothing acknowledged lost, no 5xx but 503 + Retry-After.
#
# Usage:  bench/soak.sh [MINUTES]        (default 10, per backend)
# Env:    CONNECTIONS=64  PARTS="sqlite diskfull pg"  SOAK_PROFILE=debug|dist|release
#         SOAK_NICE=0 (nice level of the load generator)
#         SOAK_BIN_DIR=DIR (take the binaries from DIR, do not build)
#         RESULTS=bench/results/soak-latest.md  KEEP_WORK=1 (always, when a goal is missed)
# Needs root (tmpfs mount, runuser postgres) and /usr/lib/postgresql/*/bin.
set -euo pipefail

MINUTES="${1:-10}"
[[ "$MINUTES" =~ ^[0-9]+$ && "$MINUTES" -gt 0 ]] || { echo "usage: bench/soak.sh [MINUTES]" >&2; exit 2; }
CONNECTIONS="${CONNECTIONS:-64}"
PARTS="${PARTS:-sqlite diskfull pg}"
PROFILE="${SOAK_PROFILE:-debug}"
SOAK_NICE="${SOAK_NICE:-0}"

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/results/soak-latest.md}"
BIN_DIR="${SOAK_BIN_DIR:-$TARGET_DIR/$PROFILE}"
GATEHOUSE="$BIN_DIR/gatehouse"
HELLO="$BIN_DIR/gatehouse-bench-hello"
SOAK="$BIN_DIR/gatehouse-soak"
DURATION_S=$(( MINUTES * 60 ))

# Extra cleanup: the tmpfs and the PostgreSQL cluster (lib.sh's trap stops PIDS).
MOUNTED=""
PG_BIN=""
PG_DATA=""
soak_cleanup() {
    local rc=$?
    if [[ -n "$PG_DATA" && -d "$PG_DATA" ]]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    for pid in "${PIDS[@]:-}"; do stop_pid "$pid"; done
    PIDS=()
    if [[ -n "$MOUNTED" ]]; then umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED" 2>/dev/null || true; fi
    # A missed goal keeps the work directory: the servers' logs are how an
    # error's correlation id is followed to its cause.
    [[ $rc -ne 0 ]] && KEEP_WORK=1
    # lib.sh's cleanup reads $? first: hand it this script's status (a failing
    # left side runs it with that status; it exits).
    trap - EXIT
    ( exit "$rc" ) || cleanup
    cleanup
}
trap soak_cleanup EXIT

# ---------------------------------------------------------------- build
log "building ($PROFILE): gatehouse, bench-hello, soak"
if [[ -n "${SOAK_BIN_DIR:-}" ]]; then
    log "not building: binaries from $SOAK_BIN_DIR"
elif [[ "$PROFILE" != debug ]]; then
    cargo build --profile "$PROFILE" -p gatehouse -p gatehouse-bench-hello -p gatehouse-soak
else
    cargo build -p gatehouse -p gatehouse-bench-hello -p gatehouse-soak
fi
[[ -x "$GATEHOUSE" ]] || die "$GATEHOUSE not built"
if [[ "$PARTS" != diskfull ]]; then # the load runs need the upstream and the load generator
    for b in "$HELLO" "$SOAK"; do [[ -x "$b" ]] || die "$b not built"; done
    start_hello
    UPSTREAM="${HELLO_URL%/connect/token}"
fi
GW_PATH="/v1/products/get-status?productCode=gcs1"
AUD="https://gateway.soak.test"
EMAIL="dev@soak.test"
PASSWORD="correct horse battery"
REDIRECT="http://localhost:3000/callback"
COMMIT="$(commit_id)"
PARTS_JSON="$WORK/parts"
mkdir -p "$PARTS_JSON"

# ---------------------------------------------------------------- helpers
# setup_tenant DIR: the org, users, APIs and apps, as JSON files in DIR (gh
# works on $DB).
setup_tenant() {
    local d="$1"
    mkdir -p "$d"
    gh org create --name "Soak Org" --json > "$d/org.json"
    printf '%s\n' "$PASSWORD" | gh user create --org soak-org --email "$EMAIL" --role developer \
        --password-stdin --json > /dev/null
    gh user create --org soak-org --email ops@soak.test --role developer --json > /dev/null
    gh user create --org soak-org --email root@soak.test --role admin --json > /dev/null
    # Access tokens live 30 s, so expired tokens are there to try after a minute.
    gh api create --org soak-org --name Gateway --audience "$AUD" --scopes cfgateway \
        --access-token-ttl 30 --json > "$d/api.json"
    gh api create --org soak-org --name Ref --audience https://ref.soak.test --scopes refscope \
        --token-format reference --json > "$d/ref_api.json"
    gh app register --org soak-org --name Machine --grant client_credentials \
        --on-behalf-of "$EMAIL" --scopes cfgateway --json > "$d/machine.json"
    gh app register --org soak-org --name RefMachine --grant client_credentials \
        --on-behalf-of "$EMAIL" --scopes refscope --json > "$d/ref_app.json"
    gh app register --org soak-org --name Admin --grant client_credentials \
        --on-behalf-of root@soak.test --scopes gatehouse:admin --json > "$d/admin.json"
    for i in 1 2 3 4; do
        gh app register --org soak-org --name "Victim $i" --grant client_credentials \
            --on-behalf-of "$EMAIL" --scopes cfgateway --json > "$d/victim$i.json"
    done
    gh --dev app register --org soak-org --name Web --grant authorization_code \
        --redirect-uri "$REDIRECT" --scopes cfgateway --json > "$d/web.json"
}

# write_config DIR FAULT_FILE SERVER_URL...: the load generator's config.
write_config() {
    local d="$1" fault="$2"; shift 2
    python3 - "$d" "$fault" "$DURATION_S" "$CONNECTIONS" "$GW_URL" "$GW_PATH" "$EMAIL" "$PASSWORD" \
        "$REDIRECT" "$@" > "$d/config.json" <<'PY'
import json, sys
d, fault, dur, conns, gw, path, email, pw, redirect, *servers = sys.argv[1:]
def creds(name):
    v = json.load(open(f"{d}/{name}.json"))
    return {"client_id": v["client_id"], "client_secret": v["client_secret"]}
print(json.dumps({
    "servers": servers, "gateway": gw, "gateway_path": path,
    "api": creds("api"), "ref_api": creds("ref_api"), "machine": creds("machine"),
    "ref_app": creds("ref_app"), "victims": [creds(f"victim{i}") for i in range(1, 5)],
    "users": [email, "ops@soak.test"], "admin": creds("admin"), "web": creds("web"),
    "redirect_uri": redirect, "web_scope": "cfgateway offline_access",
    "email": email, "password": pw, "gateway_scope": "cfgateway", "ref_scope": "refscope",
    "leeway_secs": 5, "fault_file": fault, "duration_secs": int(dur), "connections": int(conns),
}))
PY
}

# start_gateway ISSUER API_JSON: sets GW_PID, GW_URL.
start_gateway() {
    local port
    port="$(free_port)"
    GATEHOUSE_GATEWAY_API_CLIENT_SECRET="$(json_get client_secret < "$2")" "$GATEHOUSE" gateway \
        --listen "127.0.0.1:$port" --issuer "$1" --audience "$AUD" \
        --api-client-id "$(json_get client_id < "$2")" --upstream "$UPSTREAM" \
        --route "GET /v1/products/*=cfgateway" > "$WORK/gateway-$PART.log" 2>&1 &
    GW_PID=$!; PIDS+=("$GW_PID")
    GW_URL="http://127.0.0.1:$port"
    wait_http "$GW_URL/health" "$GW_PID" gateway
}

# serve NAME PORT ARGS...: a `gatehouse serve` in the background; sets SERVED_PID.
serve() {
    local name="$1" port="$2"; shift 2
    RUST_LOG="${RUST_LOG:-warn}" "$GATEHOUSE" serve --listen "127.0.0.1:$port" \
        --failures-per-address 1000000 --failures-per-client 1000000 "$@" \
        >> "$WORK/$name.log" 2>&1 &
    SERVED_PID=$!; PIDS+=("$SERVED_PID")
    wait_http "http://127.0.0.1:$port/health" "$SERVED_PID" "$name"
}

# rss_line SECONDS NAME=PID...: one line of RSS samples (kB) to $RSS.
rss_line() {
    local t="$1"; shift
    local line="$t"
    for np in "$@"; do
        local pid="${np#*=}"
        line+=$'\t'"${np%%=*}=$(status_kb "$pid" VmRSS 2>/dev/null || echo 0)"
    done
    printf '%s\n' "$line" >> "$RSS"
}

# fault NAME COMMAND...: announces the fault to the load generator (the fault
# file), runs the command, withdraws it.
fault() {
    local name="$1"; shift
    log "fault: $name"
    rm -f "$FAULT_FILE.seen"
    printf '%s\n' "$name" > "$FAULT_FILE"
    # The load generator may be busy checking the previous fault: act only once
    # it has seen this one, so what the fault causes is judged as the fault's.
    for _ in $(seq 1 600); do [[ -e "$FAULT_FILE.seen" ]] && break; sleep 0.1; done
    [[ -e "$FAULT_FILE.seen" ]] || die "the load generator did not see the fault $name"
    "$@"
    rm -f "$FAULT_FILE"
}

# soak_run PART SERVER_URLS...: runs the load generator while sampling RSS every
# 5 s and firing FAULT_AT ("SECONDS:function ...") on time.
soak_run() {
    local part="$1"; shift
    local out="$PARTS_JSON/$part.json"
    write_config "$TENANT" "$FAULT_FILE" "$@"
    RSS="$PARTS_JSON/$part.rss.tsv"
    : > "$RSS"
    log "$part: load for $MINUTES min at $CONNECTIONS connections"
    nice -n "$SOAK_NICE" "$SOAK" "$TENANT/config.json" "$out" 2> "$WORK/soak-$part.log" &
    local lpid=$!; PIDS+=("$lpid")
    local t0=$SECONDS next_rss=0 f
    local -a pending=($FAULT_AT)
    while kill -0 "$lpid" 2>/dev/null; do
        local t=$(( SECONDS - t0 ))
        if (( t >= next_rss )); then
            rss_line "$t" $(rss_pids)
            next_rss=$(( next_rss + 5 ))
        fi
        if (( ${#pending[@]} > 0 )) && (( t >= ${pending[0]%%:*} )); then
            f="${pending[0]#*:}"
            pending=("${pending[@]:1}")
            "$f"
        fi
        sleep 1
    done
    wait "$lpid" || die "the load generator failed (see $WORK/soak-$part.log)"
    rss_line "$(( SECONDS - t0 ))" $(rss_pids)
    cat "$WORK/soak-$part.log" >&2
}

rotate_keys() { fault keys-rotate gh keys rotate --alg ES256 --key-file "$KEY_FILE" > /dev/null; }

# ---------------------------------------------------------------- 1. SQLite
if [[ " $PARTS " == *" sqlite "* ]]; then
    PART=sqlite
    TENANT="$WORK/sqlite"; mkdir -p "$TENANT"
    DB="sqlite://$TENANT/gh.db"
    KEY_FILE="$TENANT/gh.key"
    FAULT_FILE="$WORK/fault-sqlite"
    PORT="$(free_port)"
    serve gatehouse-sqlite "$PORT" --database-url "$DB" --key-file "$KEY_FILE"
    SQLITE_PID="$SERVED_PID"
    setup_tenant "$TENANT"
    start_gateway "http://127.0.0.1:$PORT" "$TENANT/api.json"
    rss_pids() { echo "server=$SQLITE_PID" "gateway=$GW_PID"; }
    FAULT_AT="$(( DURATION_S / 2 )):rotate_keys"
    soak_run sqlite "http://127.0.0.1:$PORT"
    kill -0 "$SQLITE_PID" 2>/dev/null || die "the SQLite server died"
    stop_pid "$GW_PID"; stop_pid "$SQLITE_PID"
fi

# ---------------------------------------------------------------- 2. disk full
if [[ " $PARTS " == *" diskfull "* ]]; then
    PART=diskfull
    TENANT="$WORK/full-tenant"; mkdir -p "$TENANT"
    FULL="$WORK/full"; mkdir -p "$FULL"
    mount -t tmpfs -o size=48m tmpfs "$FULL" || die "cannot mount a tmpfs on $FULL (root needed)"
    MOUNTED="$FULL"
    DB="sqlite://$FULL/gh.db"
    KEY_FILE="$TENANT/gh.key"
    PORT="$(free_port)"
    serve gatehouse-diskfull "$PORT" --database-url "$DB" --key-file "$KEY_FILE"
    FULL_PID="$SERVED_PID"
    setup_tenant "$TENANT"
    python3 - "http://127.0.0.1:$PORT" "$TENANT" "$FULL" "$PARTS_JSON/diskfull.json" <<'PY'
import base64, http.client, json, os, sqlite3, subprocess, sys, time, urllib.parse
base, d, full, out = sys.argv[1:]
u = urllib.parse.urlsplit(base)
def creds(n):
    v = json.load(open(f"{d}/{n}.json")); return v["client_id"], v["client_secret"]
def req(method, path, form=None, basic=None, bearer=None):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    h = {}
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form); h["Content-Type"] = "application/x-www-form-urlencoded"
    if basic: h["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    if bearer: h["Authorization"] = "Bearer " + bearer
    t0 = time.monotonic()
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse(); data = r.read()
        return r.status, r.getheader("Retry-After"), data, time.monotonic() - t0
    except Exception as e:
        return 0, None, str(e).encode(), time.monotonic() - t0
    finally:
        c.close()
ref_app, ref_api, admin = creds("ref_app"), creds("ref_api"), creds("admin")
def write():  # a reference token: a row written
    return req("POST", "/connect/token", {"grant_type": "client_credentials", "scope": "refscope"}, basic=ref_app)
st, _, body, _ = write(); assert st == 200, (st, body)
before = json.loads(body)["access_token"]
st, _, body, _ = req("POST", "/connect/token", {"grant_type": "client_credentials", "scope": "gatehouse:admin"}, basic=admin)
assert st == 200, (st, body)
admin_tok = json.loads(body)["access_token"]
def reads():
    res = {}
    st, _, b, _ = req("POST", "/connect/introspect", {"token": before}, basic=ref_api)
    res["introspect"] = st == 200 and json.loads(b).get("active") is True
    res["jwks"] = req("GET", "/.well-known/jwks.json")[0] == 200
    res["discovery"] = req("GET", "/.well-known/openid-configuration")[0] == 200
    res["admin_list_apps"] = req("GET", "/api/v1/apps", bearer=admin_tok)[0] == 200
    return res
# Fill the tmpfs: big blocks, then small ones, until no byte is left.
filler = os.path.join(full, "filler")
with open(filler, "wb", buffering=0) as f:
    for bs in (1 << 20, 4096, 1):
        try:
            while True:
                f.write(b"\0" * bs); f.flush()
        except OSError:
            pass
free = os.statvfs(full).f_bavail
# Writes until they fail (SQLite may reuse the space its WAL holds for a while).
statuses, retry_after_missing, hangs, n = {}, 0, 0, 0
first_fail = None
for n in range(1, 3001):
    st, ra, body, dt = write()
    statuses[st] = statuses.get(st, 0) + 1
    if dt > 5: hangs += 1
    if st != 200:
        if first_fail is None: first_fail = n
        if st == 503 and ra is None: retry_after_missing += 1
        if first_fail is not None and n - first_fail >= 20: break
reads_full = reads()
# Space returns: the service recovers by itself.
os.remove(filler)
t0 = time.monotonic(); recovered = None
while time.monotonic() - t0 < 30:
    if write()[0] == 200: recovered = time.monotonic() - t0; break
    time.sleep(0.05)
reads_after = reads()
json.dump({"free_blocks_after_fill": free, "writes": n, "first_failure_at": first_fail,
           "statuses": {str(k): v for k, v in statuses.items()}, "missing_retry_after": retry_after_missing,
           "hangs": hangs, "reads_while_full": reads_full, "reads_after": reads_after,
           "recovery_s": recovered}, open(out, "w"))
print(json.dumps(json.load(open(out))), file=sys.stderr)
PY
    stop_pid "$FULL_PID"
    INTEGRITY="$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$FULL/gh.db" 2>&1)"
    python3 - "$PARTS_JSON/diskfull.json" "$INTEGRITY" <<'PY'
import json, sys
p, integrity = sys.argv[1:]
v = json.load(open(p)); v["integrity_check"] = integrity; json.dump(v, open(p, "w"))
PY
    log "integrity_check: $INTEGRITY"
    umount "$FULL" && MOUNTED=""
fi

# ---------------------------------------------------------------- 3. PostgreSQL
if [[ " $PARTS " == *" pg "* ]]; then
    PART=pg
    PG_BIN="/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | tail -n1)/bin"
    [[ -x "$PG_BIN/initdb" ]] || die "no PostgreSQL under /usr/lib/postgresql"
    PG_DIR="$WORK/pg"; mkdir -p "$PG_DIR"
    chmod 755 "$WORK" "$PG_DIR"; chown postgres:postgres "$PG_DIR"
    PG_DATA="$PG_DIR/data"
    runuser -u postgres -- "$PG_BIN/initdb" -A trust -U postgres -D "$PG_DATA" > "$WORK/initdb.log" 2>&1 \
        || die "initdb failed (see $WORK/initdb.log)"
    PG_PORT="$(free_port)"
    pg_up() {
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/log" -w \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DATA" start > /dev/null
    }
    pg_down() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop > /dev/null; }
    pg_up
    DB="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    TENANT="$WORK/pg-tenant"; mkdir -p "$TENANT"
    KEY_FILE="$TENANT/gh.key"
    FAULT_FILE="$WORK/fault-pg"
    PORT_A="$(free_port)"; PORT_B="$(free_port)"
    ISSUER="http://127.0.0.1:$PORT_A"
    PG_ARGS=(--database-url "$DB" --key-file "$KEY_FILE" --issuer "$ISSUER")
    serve gatehouse-pg-a "$PORT_A" "${PG_ARGS[@]}"; PG_A="$SERVED_PID"
    serve gatehouse-pg-b "$PORT_B" "${PG_ARGS[@]}"; PG_B="$SERVED_PID"
    setup_tenant "$TENANT"
    start_gateway "$ISSUER" "$TENANT/api.json"
    rss_pids() { echo "server=$PG_A" "server_b=$PG_B" "gateway=$GW_PID"; }
    restart_pg() { pg_down; sleep 3; pg_up; }
    restart_b() {
        kill -KILL "$PG_B"; wait "$PG_B" 2>/dev/null || true
        sleep 1
        serve gatehouse-pg-b "$PORT_B" "${PG_ARGS[@]}"; PG_B="$SERVED_PID"
    }
    fault_pg() { fault pg-restart restart_pg; }
    fault_kill() { fault "kill 1" restart_b; }
    FAULT_AT="$(( DURATION_S * 3 / 10 )):fault_pg $(( DURATION_S / 2 )):fault_kill $(( DURATION_S * 7 / 10 )):rotate_keys"
    soak_run pg "$ISSUER" "http://127.0.0.1:$PORT_B"
    for p in "$PG_A" "$PG_B"; do kill -0 "$p" 2>/dev/null || die "a PostgreSQL instance died"; done
fi

# ---------------------------------------------------------------- report
mkdir -p "$(dirname "$RESULTS")"
set +e
python3 "$ROOT/bench/soak_report.py" "$PARTS_JSON" "$RESULTS" "$COMMIT" "$MINUTES" "$CONNECTIONS" "$PROFILE" \
    "$(nproc)" "$(loadavg)"
rc=$?
set -e
log "wrote ${RESULTS#"$ROOT"/}"
exit "$rc"
