#!/usr/bin/env bash
# User flows benchmark, in one run and beside the same hello-world baseline:
#   1. grant_type=refresh_token per second (rotating families, wrk + Lua),
#   2. grant_type=authorization_code per second (codes minted in bulk beforehand),
#   3. the cost of one login (POST /login with the right password, Argon2id), one at
#      a time and a few at a time.
# Prints a table and writes it as Markdown to bench/results/user-flows-latest.md.
#
# Usage:  bench/user-flows.sh
# Env:    DURATION=10s       how long each wrk run lasts (wrk -d; s, m or h)
#         CONNECTIONS=64     concurrent connections (wrk -c)
#         THREADS=2          wrk threads (wrk -t; default: the number of CPUs)
#         FAMILIES=512       refresh-token families minted for the refresh run
#         CODES=60000        codes minted for the code-exchange run (default: 6000
#                            per second of DURATION, at least 60000)
#         MINT_CONCURRENCY=8 parallel browsers minting codes
#         LOGINS=200         sign-ins per login case
#         LOGIN_CONCURRENCY="1 4"
#         HELLO_PORT=18181 GATEHOUSE_PORT=18182   (a busy port is swapped for a free one)
#         RESULTS=bench/results/user-flows-latest.md
#         KEEP_WORK=1        keep the temporary directory (wrk and server output)
#
# How codes are minted without a browser: one scripted sign-in (GET /connect/authorize,
# POST /login, POST /consent allow, all with a cookie jar, bench/flows.py); consent is
# then remembered, so every further GET /connect/authorize with the session cookie
# answers 303 with a fresh code and no password check.
#
# This is a benchmark, not a test: it fails only when it cannot measure (a build
# fails, a server does not come up, setup fails). Non-200 answers are counted and
# reported, not fatal.
set -euo pipefail

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-$(nproc)}"
FAMILIES="${FAMILIES:-512}"
MINT_CONCURRENCY="${MINT_CONCURRENCY:-8}"
LOGINS="${LOGINS:-200}"
LOGIN_CONCURRENCY="${LOGIN_CONCURRENCY:-1 4}"

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/results/user-flows-latest.md}"
FLOWS="$ROOT/bench/flows.py"
LUA="$ROOT/bench/wrk/flows.lua"

duration_s() { # 10s, 2m, 1h, 30 -> seconds
    local d="$1"
    case "$d" in
        *h) echo $(( ${d%h} * 3600 )) ;;
        *m) echo $(( ${d%m} * 60 )) ;;
        *s) echo "${d%s}" ;;
        *) echo "$d" ;;
    esac
}
DURATION_S="$(duration_s "$DURATION")"
[[ "$DURATION_S" =~ ^[0-9]+$ && "$DURATION_S" -gt 0 ]] || die "DURATION must be like 10s, 2m or 1h"
CODES="${CODES:-$(( DURATION_S * 6000 > 60000 ? DURATION_S * 6000 : 60000 ))}"
(( CONNECTIONS >= THREADS )) || die "CONNECTIONS must be at least THREADS"
(( FAMILIES >= 2 * CONNECTIONS )) || log "warning: FAMILIES below 2 x CONNECTIONS leaves little slack"

# ---------------------------------------------------------------- 1. build, wrk
build_release
if ! command -v wrk >/dev/null 2>&1; then
    log "wrk not found: apt-get install -y wrk"
    apt-get install -y wrk >&2 || die "cannot install wrk (apt-get install -y wrk)"
fi
WRK="$(command -v wrk)"
WRK_VERSION="$("$WRK" -v 2>&1 | head -n1 | awk '{ print $1, $2 }')" || true
log "load generator: $WRK_VERSION, $THREADS threads"

CASES="$WORK/cases.tsv"
: > "$CASES"

# case_begin PID / case_end NAME RESULT CPUFILE PID: the server's CPU, the machine's
# busy time and the load average around one case, then the server's RSS and the
# size of Gatehouse's SQLite write-ahead log after it, as a line of CASES.
case_begin() {
    C_LOAD="$(loadavg)"
    C_BUSY="$(machine_busy_ticks)"
    C_TICKS="$(cpu_ticks "$1")"
}
case_end() {
    local name="$1" out="$2" cpu="$3" pid="$4"
    local ticks busy
    ticks="$(cpu_ticks "$pid")"
    busy="$(machine_busy_ticks)"
    kill -0 "$pid" 2>/dev/null || die "server for $name died under load"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$out" "$((ticks - C_TICKS))" "$cpu" \
        "$C_LOAD" "$((busy - C_BUSY))" "$(status_kb "$pid" VmRSS)" \
        "$(stat -c %s "$WORK/gh.db-wal" 2>/dev/null || echo '')" >> "$CASES"
}

# run_wrk NAME MODE PID URL [VAR=VALUE...]: one wrk run with bench/wrk/flows.lua.
run_wrk() {
    local name="$1" mode="$2" pid="$3" url="$4"; shift 4
    local out="$WORK/wrk-$name.json"
    log "load: $name, $CONNECTIONS connections for $DURATION"
    case_begin "$pid"
    env WRK_MODE="$mode" WRK_THREADS="$THREADS" WRK_OUT="$out" "$@" \
        python3 "$REPORT" run "$WORK/wrk-$name.txt" -- "$WRK" -t "$THREADS" -c "$CONNECTIONS" \
        -d "$DURATION" --timeout 10s -s "$LUA" "$url"
    case_end "$name" "$out" "$WORK/wrk-$name.txt.cpu" "$pid"
    [[ -s "$out" ]] || die "wrk wrote no summary for $name (see $WORK/wrk-$name.txt)"
}

LOADAVG_BEFORE="$(loadavg)"

# ---------------------------------------------------------------- 2. hello world
start_hello
# The same request size as a refresh: a Basic header of a client id and secret, a
# refresh token of 43 characters.
run_wrk hello hello "$HELLO_PID" "$HELLO_URL" \
    WRK_AUTH="Basic $(printf '%s:%s' 00000000-0000-4000-8000-000000000000 "$(printf 'x%.0s' $(seq 1 43))" | base64 -w0)" \
    WRK_BODY="grant_type=refresh_token&refresh_token=$(printf 'y%.0s' $(seq 1 43))"
stop_pid "$HELLO_PID"

# ---------------------------------------------------------------- 3. gatehouse, setup
# Codes live the longest allowed so a long minting run cannot outlast them.
start_gatehouse --code-ttl 3600

EMAIL=u@bench.test
PASSWORD='correct horse battery'
REDIRECT=https://app.bench.test/cb
SCOPE='scope-ES256 offline_access'
gh org create --name "Bench Org" --json > "$WORK/org.json"
printf '%s\n' "$PASSWORD" | gh user create --org bench-org --email "$EMAIL" --role developer \
    --password-stdin --json > "$WORK/user.json"
gh api create --org bench-org --name "Api ES256" --audience "https://es256.bench.test" \
    --scopes scope-ES256 --signing-alg ES256 --json > "$WORK/api.json"
gh app register --org bench-org --name Web --grant authorization_code --redirect-uri "$REDIRECT" \
    --scopes scope-ES256 --json > "$WORK/app.json"
CLIENT_ID="$(json_get client_id < "$WORK/app.json")"
CLIENT_SECRET="$(json_get client_secret < "$WORK/app.json")"
BASIC="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
ARGON2="$(python3 "$FLOWS" hash-params "$WORK/gh.db" "$EMAIL")"
log "password hash: $ARGON2"

# The one interactive sign-in. The server may learn of the new app a moment after
# the CLI wrote it, so retry briefly.
SESSION="$WORK/session.json"
for i in $(seq 1 50); do
    if python3 "$FLOWS" sign-in "$GH_URL" "$CLIENT_ID" "$REDIRECT" "$SCOPE" "$EMAIL" "$PASSWORD" \
        "$SESSION" 2> "$WORK/sign-in.err"; then
        break
    fi
    (( i < 50 )) || die "sign-in failed: $(cat "$WORK/sign-in.err")"
    sleep 0.2
done
log "signed in; consent remembered"

# ---------------------------------------------------------------- 4. refresh_token
log "minting $FAMILIES refresh-token families"
python3 "$FLOWS" mint-codes "$SESSION" "$FAMILIES" "$WORK/family-codes.txt" --concurrency "$MINT_CONCURRENCY"
python3 "$FLOWS" exchange "$SESSION" "$WORK/family-codes.txt" "$FAMILIES" "$WORK/families.txt" \
    --client "$CLIENT_ID:$CLIENT_SECRET" --concurrency "$MINT_CONCURRENCY" --first "$WORK/first-token.json"
python3 "$REPORT" check-token "$WORK/first-token.json" ES256 scope-ES256 \
    || die "the code exchange's token is not as expected"

IDLE_RSS_KB="$(status_kb "$GH_PID" VmRSS)"

run_wrk refresh_token refresh "$GH_PID" "$GH_URL/connect/token" \
    WRK_INPUT="$WORK/families.txt" WRK_AUTH="$BASIC"

# ---------------------------------------------------------------- 5. authorization_code
log "minting $CODES codes ($MINT_CONCURRENCY at a time)"
python3 "$FLOWS" mint-codes "$SESSION" "$CODES" "$WORK/codes.txt" --concurrency "$MINT_CONCURRENCY" \
    2> "$WORK/mint.err" || { cat "$WORK/mint.err" >&2; die "minting codes failed"; }
cat "$WORK/mint.err" >&2
MINT_NOTE="$(sed -n 's/^\[bench\] minted/minted/p' "$WORK/mint.err")"
WAL_AFTER_MINT="$(stat -c %s "$WORK/gh.db-wal" 2>/dev/null || echo 0)"
DB_AFTER_MINT="$(stat -c %s "$WORK/gh.db" 2>/dev/null || echo 0)"

run_wrk authorization_code code "$GH_PID" "$GH_URL/connect/token" \
    WRK_INPUT="$WORK/codes.txt" WRK_AUTH="$BASIC" \
    WRK_REDIRECT="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$REDIRECT")"

# ---------------------------------------------------------------- 6. logins
for c in $LOGIN_CONCURRENCY; do
    name="login c$c"
    out="$WORK/login-c$c.json"
    log "load: $name, $LOGINS sign-ins, $c at a time"
    case_begin "$GH_PID"
    python3 "$FLOWS" logins "$SESSION" "$EMAIL" "$PASSWORD" "$LOGINS" "$out" --concurrency "$c"
    case_end "$name" "$out" "$out.cpu" "$GH_PID"
done

PEAK_RSS_KB="$(status_kb "$GH_PID" VmHWM)"
FINAL_RSS_KB="$(status_kb "$GH_PID" VmRSS)"

# ---------------------------------------------------------------- 7. report
mkdir -p "$(dirname "$RESULTS")"
python3 "$REPORT" summarize "$CASES" --flavor user-flows \
    --clk-tck "$(getconf CLK_TCK)" \
    --duration "$DURATION" --connections "$CONNECTIONS" \
    --idle-rss-kb "$IDLE_RSS_KB" --peak-rss-kb "$PEAK_RSS_KB" --final-rss-kb "$FINAL_RSS_KB" \
    --oha "$WRK_VERSION -t $THREADS (bench/wrk/flows.lua), logins by bench/flows.py (Python $(python3 -c 'import platform; print(platform.python_version())'))" \
    --loadavg "$LOADAVG_BEFORE" \
    --commit "$(commit_id)" \
    --argon2 "$ARGON2" \
    --note "codes for the authorization_code run: $MINT_NOTE, by GET /connect/authorize with the session cookie (serve --code-ttl 3600); after minting, gh.db was $(( DB_AFTER_MINT / 1048576 )) MB and gh.db-wal $(( WAL_AFTER_MINT / 1048576 )) MB" \
    --markdown "$RESULTS"
log "wrote ${RESULTS#"$ROOT"/}"
