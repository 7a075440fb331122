#!/usr/bin/env bash
# PostgreSQL benchmark, in one run and each beside a hello-world baseline of the same
# run (crates/bench-hello, driven the same way):
#   1. client_credentials (ES256 JWT) on SQLite, one instance: the reference;
#   2. client_credentials on PostgreSQL, one instance and two instances (the load
#      split evenly: two oha at CONNECTIONS/2 each, one per instance, summed);
#   3. refresh_token on PostgreSQL, one instance and two instances (wrk with
#      bench/wrk/flows.lua, families minted as bench/user-flows.sh does).
# For each: req/s, p50/p99, the ratio to hello, Gatehouse CPU µs per request (both
# instances summed), PostgreSQL CPU µs per request, and database transactions and
# round trips per request, net of the change-feed polling measured idle just before.
# Prints the tables and writes them as Markdown to bench/results/pg-latest.md.
#
# Usage:  bench/pg.sh
# Env:    DURATION=10s          each load run (oha -z, wrk -d; s or m)
#         CONNECTIONS=64        in total, per case (even: split in two for 2 instances)
#         IDLE_S=5              idle seconds measured before each PostgreSQL run
#         SETTLE_S=12           wait before reading PostgreSQL's statistics: a backend
#                               publishes its counters up to 1 s late when busy and up
#                               to 10 s late once idle
#         FAMILIES=512          refresh-token families per refresh run
#         WARM_FAMILIES=64      families per instance for the refresh warm-up
#         DB_MAX_CONNECTIONS=16 serve --db-max-connections
#         PG_SERVER=postgres://postgres@127.0.0.1:5432   (a fresh database is created
#                               on it, gh_bench_<random>, and dropped at the end)
#         PG_PARAMS=            query parameters for Gatehouse's database URL, e.g.
#                               sslmode=disable (by default the client prefers TLS)
#         RESULTS=bench/results/pg-latest.md
#         KEEP_WORK=1           keep the temporary directory (server logs, raw results)
#
# This is a benchmark, not a test: it fails only when it cannot measure. Non-200
# answers are counted and reported, not fatal.
set -euo pipefail

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
IDLE_S="${IDLE_S:-5}"
SETTLE_S="${SETTLE_S:-12}"
FAMILIES="${FAMILIES:-512}"
WARM_FAMILIES="${WARM_FAMILIES:-64}"
DB_MAX_CONNECTIONS="${DB_MAX_CONNECTIONS:-16}"
PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
PG_PARAMS="${PG_PARAMS:-}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS="${RESULTS:-$ROOT/bench/results/pg-latest.md}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BENCH_PROFILE="${BENCH_PROFILE:-dist}" # as bench/lib.sh
GATEHOUSE="$TARGET_DIR/$BENCH_PROFILE/gatehouse"
HELLO="$TARGET_DIR/$BENCH_PROFILE/gatehouse-bench-hello"
PGR="$ROOT/bench/pg_report.py"

log() { printf '[pg-bench] %s\n' "$*" >&2; }
die() { printf '[pg-bench] error: %s\n' "$*" >&2; exit 1; }

(( CONNECTIONS % 2 == 0 && CONNECTIONS >= 4 )) || die "CONNECTIONS must be even and at least 4"
HALF=$(( CONNECTIONS / 2 ))
NPROC="$(nproc)"
WRK_T1=$(( NPROC < CONNECTIONS ? NPROC : CONNECTIONS ))     # wrk threads, one generator
WRK_T2=$(( NPROC / 2 > 0 ? NPROC / 2 : 1 ))                 # per generator, two at once
PG_PORT="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).port or 5432)' "$PG_SERVER")"

# ---------------------------------------------------------------- cleanup
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-pg-bench.XXXXXX")"
PIDS=()
DBNAME=""
stop_pid() {
    local pid="$1"
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]:-}"; do stop_pid "$pid"; done
    if [[ -n "$DBNAME" ]]; then
        psql -XAtq "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1 \
            && log "dropped database $DBNAME" || log "could not drop database $DBNAME"
    fi
    if [[ $rc -ne 0 ]]; then
        for f in "$WORK"/*.log; do
            [[ -s "$f" ]] || continue
            log "last lines of $(basename "$f"):"; tail -n 20 "$f" >&2 || true
        done
    fi
    if [[ -n "${KEEP_WORK:-}" ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
json_get() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
commit_id() {
    local c
    c="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)" || { echo unknown; return; }
    git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || c="$c+dirty"
    echo "$c"
}
wait_health() { # URL PID NAME
    for _ in $(seq 1 300); do
        kill -0 "$2" 2>/dev/null || die "$3 exited before answering"
        curl -fsS -o /dev/null --max-time 1 "$1/health" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$3 did not answer $1/health within 30 s"
}

declare -A LOG_OF
# notices PIDS: how many of the PostgreSQL notices that tell of a transaction out of
# step ("there is already / no transaction in progress", logged by sqlx) the logs of
# these instances hold so far, as "already none".
notices() {
    local a=0 n=0 f
    for p in ${1//,/ }; do
        f="${LOG_OF[$p]:-}"
        [[ -n "$f" ]] || continue
        a=$(( a + $(grep -c 'there is already a transaction in progress' "$f" || true) ))
        n=$(( n + $(grep -c 'there is no transaction in progress' "$f" || true) ))
    done
    echo "$a $n"
}

# start_gh NAME DB_URL [serve args...]: a Gatehouse instance; sets LAST_PID, LAST_URL.
start_gh() {
    local name="$1" db="$2"; shift 2
    local port; port="$(free_port)"
    RUST_LOG="${RUST_LOG:-info}" "$GATEHOUSE" serve --listen "127.0.0.1:$port" \
        --database-url "$db" --key-file "$WORK/gh.key" \
        --failures-per-address 1000000 "$@" > "$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    LOG_OF[$LAST_PID]="$WORK/$name.log"
    LAST_URL="http://127.0.0.1:$port"
    wait_health "$LAST_URL" "$LAST_PID" "$name"
    log "$name up on $LAST_URL (pid $LAST_PID)"
}

# first_token URL ID:SECRET OUT: a client credentials token, retried briefly (the
# server may learn of a new app a moment after the CLI wrote it), then checked.
first_token() {
    local url="$1" creds="$2" out="$3" code=""
    for _ in $(seq 1 50); do
        code="$(curl -sS -o "$out" -w '%{http_code}' --max-time 5 -u "$creds" \
            -d grant_type=client_credentials "$url/connect/token" || true)"
        [[ "$code" == 200 ]] && break
        sleep 0.2
    done
    [[ "$code" == 200 ]] || die "no token from $url (last status $code: $(cat "$out" 2>/dev/null))"
    python3 "$PGR" check-token "$out" ES256 scope-ES256 || die "token from $url is not as expected"
}

cli() { local db="$1"; shift; "$GATEHOUSE" --database-url "$db" "$@"; }

# ---------------------------------------------------------------- load generators
OHA_BODY='grant_type=client_credentials'
# launch_oha AUTH BODY CONNS URL...: one oha per URL, all at once, CONNS each; results
# in CASE_DIR (set by measure).
launch_oha() {
    local dir="$CASE_DIR" auth="$1" body="$2" conns="$3"; shift 3
    local i=0 pids=() outs=()
    for url in "$@"; do
        i=$((i + 1))
        local out="$dir/gen$i.json"
        python3 "$PGR" run "$out" "$out.cpu" -- "$OHA" -z "$DURATION" -c "$conns" --no-tui \
            --output-format json -m POST -H 'Content-Type: application/x-www-form-urlencoded' \
            -a "$auth" -d "$body" "$url/connect/token" &
        pids+=($!); outs+=("$out")
    done
    for p in "${pids[@]}"; do wait "$p" || die "a load generator failed (see $dir)"; done
    GEN_OUTS="$(IFS=,; echo "${outs[*]}")"
}
# launch_wrk MODE AUTH BODY CONNS THREADS URL=INPUT...: one wrk per URL, all at once.
launch_wrk() {
    local dir="$CASE_DIR" mode="$1" auth="$2" body="$3" conns="$4" threads="$5"; shift 5
    local i=0 pids=() outs=()
    for spec in "$@"; do
        i=$((i + 1))
        local out="$dir/gen$i.json" url="${spec%%=*}" input="${spec#*=}"
        env WRK_MODE="$mode" WRK_THREADS="$threads" WRK_OUT="$out" WRK_INPUT="$input" \
            WRK_AUTH="$auth" WRK_BODY="$body" \
            python3 "$PGR" run "$out.txt" "$out.cpu" -- "$WRK" -t "$threads" -c "$conns" \
            -d "$DURATION" --timeout 10s -s "$LUA" "$url/connect/token" &
        pids+=($!); outs+=("$out")
    done
    for p in "${pids[@]}"; do wait "$p" || die "a load generator failed (see $dir)"; done
    for o in "${outs[@]}"; do [[ -s "$o" ]] || die "wrk wrote no summary ($o.txt)"; done
    GEN_OUTS="$(IFS=,; echo "${outs[*]}")"
}

# ---------------------------------------------------------------- one case
CASES="$WORK/cases.tsv"
: > "$CASES"
NCASE=0
# measure NAME KIND BACKEND INSTANCES LOAD HELLO_REF PIDS DBNAME|- LAUNCHER ARGS...
# PIDS: comma-separated server pids. With a database: wait for the setup's
# statistics to settle, measure IDLE_S idle, run, wait again, read once more.
measure() {
    local name="$1" kind="$2" backend="$3" inst="$4" load="$5" href="$6" pids="$7" db="$8"
    shift 8
    NCASE=$((NCASE + 1))
    CASE_DIR="$WORK/case$NCASE"
    local dir="$CASE_DIR"; mkdir -p "$dir"
    local dbargs=() n_already0=0 n_none0=0 n_already n_none
    [[ "$db" != - ]] && dbargs=(--db-url "$PG_SERVER/$db" --pg-port "$PG_PORT")
    if [[ "$db" != - ]]; then
        log "$name: waiting ${SETTLE_S}s for PostgreSQL's statistics, then ${IDLE_S}s idle"
        sleep "$SETTLE_S"
        python3 "$PGR" snap "$dir/idle0.json" --pids "$pids" "${dbargs[@]}"
        read -r n_already0 n_none0 <<< "$(notices "$pids")"
        sleep "$IDLE_S"
    fi
    python3 "$PGR" snap "$dir/start.json" --pids "$pids" "${dbargs[@]}"
    local watcher=""
    if [[ "$db" != - ]]; then
        # Samples Gatehouse's PostgreSQL connections during the run, so that one
        # closed before the end still counts.
        python3 "$PGR" watch "$dir/watch.json" --pids "$pids" --pg-port "$PG_PORT" &
        watcher=$!
        PIDS+=("$watcher")
    fi
    log "load: $name ($load, $DURATION)"
    "$@"
    python3 "$PGR" snap "$dir/end.json" --pids "$pids" "${dbargs[@]}"
    if [[ -n "$watcher" ]]; then
        kill -TERM "$watcher"; wait "$watcher" || die "the connection sampler failed"
    fi
    for p in ${pids//,/ }; do kill -0 "$p" 2>/dev/null || die "server $p died during $name"; done
    if [[ "$db" != - ]]; then
        sleep "$SETTLE_S"
        python3 "$PGR" snap "$dir/settled.json" --pids "$pids" "${dbargs[@]}"
        read -r n_already n_none <<< "$(notices "$pids")"
        printf '{"there is already a transaction in progress": %d, "there is no transaction in progress": %d}\n' \
            $(( n_already - n_already0 )) $(( n_none - n_none0 )) > "$dir/notices.json"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$backend" "$inst" "$load" \
        "$href" "$GEN_OUTS" "$dir" >> "$CASES"
}

# ---------------------------------------------------------------- 1. build, tools
log "building release binaries (may wait for another cargo's lock)"
cargo build --profile "$BENCH_PROFILE" -p gatehouse -p gatehouse-bench-hello
[[ -x "$GATEHOUSE" && -x "$HELLO" ]] || die "binaries not found under $TARGET_DIR/$BENCH_PROFILE"
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
command -v oha >/dev/null 2>&1 || { log "oha not found: cargo install oha"; cargo install oha --locked; }
OHA="$(command -v oha)"
if ! command -v wrk >/dev/null 2>&1; then
    log "wrk not found: apt-get install -y wrk"
    apt-get install -y wrk >&2 || die "cannot install wrk"
fi
WRK="$(command -v wrk)"
command -v psql >/dev/null 2>&1 || die "psql not found"
command -v ss >/dev/null 2>&1 || die "ss (iproute2) not found"
# The browser side of the code flow and the wrk script, as of this run (another
# edit while the benchmark runs must not change it half-way).
cp "$ROOT/bench/flows.py" "$WORK/flows.py"
cp "$ROOT/bench/wrk/flows.lua" "$WORK/flows.lua"
FLOWS="$WORK/flows.py"
LUA="$WORK/flows.lua"
OHA_VERSION="$("$OHA" --version 2>/dev/null | head -n1)" || true
WRK_VERSION="$("$WRK" -v 2>&1 | head -n1 | awk '{ print $1, $2 }')" || true   # wrk -v exits 1
LOADGEN="$OHA_VERSION for client credentials, $WRK_VERSION with bench/wrk/flows.lua for refresh (-t $WRK_T1 for one generator, -t $WRK_T2 each for two)"

PG_VERSION="$(psql -XAtq "$PG_SERVER/postgres" -c 'SHOW server_version')" || die "PostgreSQL at $PG_SERVER does not answer"
PG_VERSION="PostgreSQL ${PG_VERSION%% *} at ${PG_SERVER#*@}"
PRELOAD="$(psql -XAtq "$PG_SERVER/postgres" -c 'SHOW shared_preload_libraries')"
NOTES=()
if [[ "$PRELOAD" != *pg_stat_statements* ]]; then
    NOTES+=("pg_stat_statements is not loaded (shared_preload_libraries = '$PRELOAD'), so statements are counted as round trips on the wire (TCP data segments) rather than by the server")
fi

LOADAVG_BEFORE="$(loadavg)"

# ---------------------------------------------------------------- 2. hello
HELLO_URL="http://127.0.0.1:$(free_port)"
"$HELLO" "${HELLO_URL#http://}" > "$WORK/hello.log" 2>&1 &
HELLO_PID=$!
PIDS+=("$HELLO_PID")
for _ in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 1 -d 'x=1' "$HELLO_URL/connect/token" 2>/dev/null && break
    kill -0 "$HELLO_PID" 2>/dev/null || die "hello server exited"
    sleep 0.1
done
log "hello up on $HELLO_URL (pid $HELLO_PID)"
# Requests the size of the real ones: a Basic header of a client id and a 43-character
# secret; a refresh token of 43 characters.
FAKE_ID=00000000-0000-4000-8000-000000000000
FAKE_SECRET="$(printf 'x%.0s' $(seq 1 43))"
FAKE_BASIC="Basic $(printf '%s:%s' "$FAKE_ID" "$FAKE_SECRET" | base64 -w0)"
HELLO_REFRESH_BODY="grant_type=refresh_token&refresh_token=$(printf 'y%.0s' $(seq 1 43))"
measure "hello oha" hello hello 1 "oha 1×$CONNECTIONS" "" "$HELLO_PID" - \
    launch_oha "$FAKE_ID:$FAKE_SECRET" "$OHA_BODY" "$CONNECTIONS" "$HELLO_URL"
measure "hello oha 2×" hello hello 1 "oha 2×$HALF" "" "$HELLO_PID" - \
    launch_oha "$FAKE_ID:$FAKE_SECRET" "$OHA_BODY" "$HALF" "$HELLO_URL" "$HELLO_URL"
measure "hello wrk" hello hello 1 "wrk 1×$CONNECTIONS" "" "$HELLO_PID" - \
    launch_wrk hello "$FAKE_BASIC" "$HELLO_REFRESH_BODY" "$CONNECTIONS" "$WRK_T1" "$HELLO_URL=-"
measure "hello wrk 2×" hello hello 1 "wrk 2×$HALF" "" "$HELLO_PID" - \
    launch_wrk hello "$FAKE_BASIC" "$HELLO_REFRESH_BODY" "$HALF" "$WRK_T2" "$HELLO_URL=-" "$HELLO_URL=-"
stop_pid "$HELLO_PID"

# ---------------------------------------------------------------- 3. SQLite reference
SQLITE_DB="sqlite://$WORK/gh.db"
start_gh gatehouse-sqlite "$SQLITE_DB"
SQLITE_PID=$LAST_PID SQLITE_URL=$LAST_URL
# cc_setup DB_URL PREFIX: org, user (with a password, for the code flow), ES256 API and
# client credentials app through the CLI, as bench/token.sh does; sets CC_CREDS.
cc_setup() {
    local db="$1" p="$2"
    cli "$db" org create --name "Bench Org" --json > "$WORK/$p-org.json"
    printf '%s\n' "$PASSWORD" | cli "$db" user create --org bench-org --email "$EMAIL" \
        --role developer --password-stdin --json > "$WORK/$p-user.json"
    cli "$db" api create --org bench-org --name "Api ES256" --audience https://es256.bench.test \
        --scopes scope-ES256 --signing-alg ES256 --json > "$WORK/$p-api.json"
    cli "$db" app register --org bench-org --name "App ES256" --grant client_credentials \
        --on-behalf-of "$EMAIL" --scopes scope-ES256 --json > "$WORK/$p-app.json"
    CC_CREDS="$(json_get client_id < "$WORK/$p-app.json"):$(json_get client_secret < "$WORK/$p-app.json")"
}
EMAIL=u@bench.test
PASSWORD='correct horse battery'
cc_setup "$SQLITE_DB" sqlite
first_token "$SQLITE_URL" "$CC_CREDS" "$WORK/sqlite-token.json"
"$OHA" -n 2000 -c 8 --no-tui -m POST -a "$CC_CREDS" -d "$OHA_BODY" \
    -H 'Content-Type: application/x-www-form-urlencoded' "$SQLITE_URL/connect/token" > /dev/null
measure "cc SQLite" client_credentials SQLite 1 "oha 1×$CONNECTIONS" "hello oha" "$SQLITE_PID" - \
    launch_oha "$CC_CREDS" "$OHA_BODY" "$CONNECTIONS" "$SQLITE_URL"
stop_pid "$SQLITE_PID"

# ---------------------------------------------------------------- 4. PostgreSQL setup
DBNAME="gh_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
psql -XAtq "$PG_SERVER/postgres" -c "CREATE DATABASE $DBNAME" >/dev/null
PG_DB="$PG_SERVER/$DBNAME${PG_PARAMS:+?$PG_PARAMS}"
log "database $DBNAME"
PG_SERVE=(--db-max-connections "$DB_MAX_CONNECTIONS" --code-ttl 3600)
start_gh gatehouse-pg-a "$PG_DB" "${PG_SERVE[@]}"
A_PID=$LAST_PID A_URL=$LAST_URL
cc_setup "$PG_DB" pg
PG_CREDS="$CC_CREDS"
first_token "$A_URL" "$PG_CREDS" "$WORK/pg-a-token.json"

# Refresh-token families, as bench/user-flows.sh mints them: one scripted sign-in,
# then codes by GET /connect/authorize with the session, exchanged at /connect/token.
REDIRECT=https://app.bench.test/cb
cli "$PG_DB" app register --org bench-org --name Web --grant authorization_code \
    --redirect-uri "$REDIRECT" --scopes scope-ES256 --json > "$WORK/pg-web.json"
WEB_ID="$(json_get client_id < "$WORK/pg-web.json")"
WEB_SECRET="$(json_get client_secret < "$WORK/pg-web.json")"
WEB_BASIC="Basic $(printf '%s:%s' "$WEB_ID" "$WEB_SECRET" | base64 -w0)"
SESSION="$WORK/session.json"
for i in $(seq 1 50); do
    python3 "$FLOWS" sign-in "$A_URL" "$WEB_ID" "$REDIRECT" "scope-ES256 offline_access" \
        "$EMAIL" "$PASSWORD" "$SESSION" 2> "$WORK/sign-in.err" && break
    (( i < 50 )) || die "sign-in failed: $(cat "$WORK/sign-in.err")"
    sleep 0.2
done
NEED=$(( 2 * FAMILIES + 3 * WARM_FAMILIES ))
log "minting $NEED refresh-token families"
python3 "$FLOWS" mint-codes "$SESSION" "$NEED" "$WORK/codes.txt" --concurrency 8
python3 "$FLOWS" exchange "$SESSION" "$WORK/codes.txt" "$NEED" "$WORK/families.txt" \
    --client "$WEB_ID:$WEB_SECRET" --concurrency 8 --first "$WORK/first-refresh.json"
python3 "$PGR" check-token "$WORK/first-refresh.json" ES256 scope-ES256 \
    || die "the code exchange's token is not as expected"
# Disjoint slices: run 1, run 2 (half per instance), and the warm-ups.
slice() { sed -n "$(( $2 + 1 )),$(( $2 + $3 ))p" "$WORK/families.txt" > "$WORK/$1"; }
slice fam-1.txt 0 "$FAMILIES"
slice fam-2a.txt "$FAMILIES" $(( FAMILIES / 2 ))
slice fam-2b.txt $(( FAMILIES + FAMILIES / 2 )) $(( FAMILIES - FAMILIES / 2 ))
slice warm-a1.txt $(( 2 * FAMILIES )) "$WARM_FAMILIES"
slice warm-a2.txt $(( 2 * FAMILIES + WARM_FAMILIES )) "$WARM_FAMILIES"
slice warm-b2.txt $(( 2 * FAMILIES + 2 * WARM_FAMILIES )) "$WARM_FAMILIES"

# Warm-ups: the app in each instance's cache, every pool connection's prepared statements.
warm_cc() { for u in "$@"; do
    "$OHA" -n 2000 -c 16 --no-tui -m POST -a "$PG_CREDS" -d "$OHA_BODY" \
        -H 'Content-Type: application/x-www-form-urlencoded' "$u/connect/token" > /dev/null
done; }
warm_refresh() { # URL FAMILIES
    env WRK_MODE=refresh WRK_THREADS=1 WRK_OUT="$WORK/warm.json" WRK_INPUT="$2" WRK_AUTH="$WEB_BASIC" \
        "$WRK" -t 1 -c 16 -d 2s --timeout 10s -s "$LUA" "$1/connect/token" > /dev/null
}

# ---------------------------------------------------------------- 5. PostgreSQL, one instance
warm_cc "$A_URL"
measure "cc PG 1" client_credentials PostgreSQL 1 "oha 1×$CONNECTIONS" "hello oha" "$A_PID" "$DBNAME" \
    launch_oha "$PG_CREDS" "$OHA_BODY" "$CONNECTIONS" "$A_URL"
warm_refresh "$A_URL" "$WORK/warm-a1.txt"
measure "refresh PG 1" refresh_token PostgreSQL 1 "wrk 1×$CONNECTIONS" "hello wrk" "$A_PID" "$DBNAME" \
    launch_wrk refresh "$WEB_BASIC" "" "$CONNECTIONS" "$WRK_T1" \
    "$A_URL=$WORK/fam-1.txt"

# ---------------------------------------------------------------- 6. PostgreSQL, two instances
start_gh gatehouse-pg-b "$PG_DB" "${PG_SERVE[@]}"
B_PID=$LAST_PID B_URL=$LAST_URL
first_token "$B_URL" "$PG_CREDS" "$WORK/pg-b-token.json"
warm_cc "$A_URL" "$B_URL"
measure "cc PG 2" client_credentials PostgreSQL 2 "oha 2×$HALF" "hello oha 2×" "$A_PID,$B_PID" "$DBNAME" \
    launch_oha "$PG_CREDS" "$OHA_BODY" "$HALF" "$A_URL" "$B_URL"
warm_refresh "$A_URL" "$WORK/warm-a2.txt"
warm_refresh "$B_URL" "$WORK/warm-b2.txt"
measure "refresh PG 2" refresh_token PostgreSQL 2 "wrk 2×$HALF" "hello wrk 2×" "$A_PID,$B_PID" "$DBNAME" \
    launch_wrk refresh "$WEB_BASIC" "" "$HALF" "$WRK_T2" \
    "$A_URL=$WORK/fam-2a.txt" "$B_URL=$WORK/fam-2b.txt"

# ---------------------------------------------------------------- 7. report
mkdir -p "$(dirname "$RESULTS")"
note_args=()
for n in "${NOTES[@]:-}"; do [[ -n "$n" ]] && note_args+=(--note "$n"); done
python3 "$PGR" summarize "$CASES" --clk-tck "$(getconf CLK_TCK)" \
    --duration "$DURATION" --connections "$CONNECTIONS" --loadgen "$LOADGEN" \
    --loadavg "$LOADAVG_BEFORE" --commit "$(commit_id)" --pg-version "$PG_VERSION" \
    --pool "--db-max-connections $DB_MAX_CONNECTIONS per instance" \
    "${note_args[@]}" --markdown "$RESULTS"
log "wrote ${RESULTS#"$ROOT"/}"
