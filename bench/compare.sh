#!/usr/bin/env bash
# The speed figures of issue 11, this commit against an earlier one, in one run.
#
# For the base binary and this commit's, each on its own fresh databases with the
# same org, password user, ES256 JWT API, reference-token API and apps:
#   client_credentials ES256            POST /connect/token
#   introspection of a reference token  POST /connect/introspect (as the API)
#   introspection of a JWT              POST /connect/introspect (as the API)
#   authorization_code on SQLite        codes minted beforehand (bench/flows.py)
#   refresh_token on SQLite             rotating families (bench/wrk/flows.lua)
#   refresh_token on PostgreSQL         the same, plus database round trips per
#                                       refresh (TCP data segments the server sent
#                                       to PostgreSQL, tcp_info data_segs_out as
#                                       bench/pg.sh reads them, net of the change
#                                       feed's idle polling measured just before)
# each with wrk (64 connections, DURATION), base and new alternating ROUNDS times,
# reporting the median of the server's CPU time (utime+stime) per 200 answer and
# of 200 answers per second; a hello-world POST of the same stack
# (crates/bench-hello) is measured in every round as the floor, and with cc the
# same stack making one ES256 signature per request (client_credentials' own
# floor: no token endpoint can cost less than that). Then callgrind:
# the server's instructions per request over CALLGRIND_N sequential requests
# after a warm-up, for client_credentials and both introspections, net of the
# server's idle work (the feed polling) over the same time: a figure that barely
# moves with whatever else runs on the machine.
#
# Usage:  bench/compare.sh [BASE_REV]        (default: HEAD~1)
# Env:    BASE_BIN=path   use this binary as the base instead of building BASE_REV
#         ALG=ES256 DURATION=10s ROUNDS=2 CALLGRIND_N=2000
#         FAMILIES=256        refresh-token families per refresh run
#         CODES_PER_S=4500    codes minted per second of DURATION for a code run
#         PG_SERVER=postgres://postgres@127.0.0.1:5432   (databases gh_cmp_* are
#                             created on it and dropped at the end); PG=0 skips it
#         IDLE_S=3            idle seconds measured before each PostgreSQL run
#         CALLGRIND=0         skips callgrind
#         RESULTS=bench/results/compare-latest.md   KEEP_WORK=1
#         PERF=CASE           perf-records the new server during CASE's first
#                             round (cc, code, refresh, …) into PERF_OUT
#                             (default bench/results/perf-CASE.txt)
#         PERF_ARGS="-F 999"  perf record's options (e.g. add --call-graph dwarf)
#         CASES="cc code …"   only these cases (cc introspect_ref introspect_jwt
#                             code refresh pg_refresh); all by default
set -euo pipefail

ALG="${ALG:-ES256}"
DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-2}"
CALLGRIND_N="${CALLGRIND_N:-2000}"
FAMILIES="${FAMILIES:-256}"
CODES_PER_S="${CODES_PER_S:-4500}"
PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
PG="${PG:-1}"
IDLE_S="${IDLE_S:-3}"
CALLGRIND="${CALLGRIND:-1}"
BASE_REV="${1:-HEAD~1}"

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/results/compare-latest.md}"
if ! command -v wrk >/dev/null; then
    log "wrk not found: apt-get install wrk"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2 || die "wrk is not installed"
fi
DURATION_S="${DURATION%s}"
[[ "$DURATION_S" =~ ^[0-9]+$ ]] || die "DURATION must be in seconds, like 10s"
CODES="${CODES:-$(( DURATION_S * CODES_PER_S ))}"
PG_PORT="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).port or 5432)' "$PG_SERVER")"

build_release
NEW_BIN="$WORK/gatehouse-new"
cp "$GATEHOUSE" "$NEW_BIN"
if [[ -z "${BASE_BIN:-}" ]]; then
    log "building $BASE_REV for the base (a worktree under $WORK)"
    git -C "$ROOT" worktree add -q --detach "$WORK/base" "$BASE_REV"
    # Commits before the dist profile built packages with `release` (which then
    # had dist's settings): the same optimisation either way.
    base_profile=release
    grep -q '^\[profile\.'"$BENCH_PROFILE"'\]' "$WORK/base/Cargo.toml" && base_profile=$BENCH_PROFILE
    (cd "$WORK/base" && cargo build --profile "$base_profile" -p gatehouse) >&2
    BASE_BIN="$WORK/gatehouse-base"
    cp "$TARGET_DIR/$base_profile/gatehouse" "$BASE_BIN"
    git -C "$ROOT" worktree remove --force "$WORK/base"
fi
BASE_DESC="$(git -C "$ROOT" rev-parse --short "$BASE_REV" 2>/dev/null || echo "$BASE_BIN")"
declare -A BIN=([base]="$BASE_BIN" [new]="$NEW_BIN")
# The browser side and the wrk script as of this run.
cp "$ROOT/bench/flows.py" "$WORK/flows.py"
cp "$ROOT/bench/wrk/flows.lua" "$WORK/flows.lua"
FLOWS="$WORK/flows.py"
LUA="$WORK/flows.lua"

EMAIL=bench@bench.test
PASSWORD='correct horse battery'
# A loopback redirect URI (--dev) needs no DNS; nothing is ever sent to it.
REDIRECT=http://127.0.0.1:9/cb
REDIRECT_ENC="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$REDIRECT")"
basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
creds_of() { echo "$(json_get client_id < "$1"):$(json_get "$2" < "$1")"; }

# Per server (K = base, new, pg_base, pg_new): pid, URL, and the credentials.
declare -A PID URL DBURL CC_AUTH API_AUTH REF_AUTH JWT REF WEB SESSION
PG_DBS=()
drop_pg_dbs() {
    for d in "${PG_DBS[@]:-}"; do
        [[ -n "$d" ]] && psql -XAtq "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1
    done
    return 0
}
trap 'drop_pg_dbs; cleanup' EXIT

# serve K BIN DB_URL: a server on DB_URL with everything the cases need.
serve() {
    local k="$1" bin="$2" db="$3" port
    port="$(free_port)"
    "$bin" --dev serve --listen "127.0.0.1:$port" --database-url "$db" \
        --key-file "$WORK/$k.key" --failures-per-address 1000000 --code-ttl 3600 \
        --db-max-connections 16 > "$WORK/$k.log" 2>&1 &
    PID[$k]=$!
    PIDS+=("${PID[$k]}")
    URL[$k]="http://127.0.0.1:$port"
    DBURL[$k]="$db"
    wait_http "${URL[$k]}/health" "${PID[$k]}" "$k"
    setup "$k" "$bin" "$db"
}

# setup K BIN DB_URL: org, password user, JWT API, reference API, one client
# credentials app per API, a web app and a signed-in session with consent given.
setup() {
    local k="$1" bin="$2" db="$3" w="$WORK/$1"
    local cli=("$bin" --dev --database-url "$db")
    "${cli[@]}" org create --name "Bench Org" --json > /dev/null
    printf '%s\n' "$PASSWORD" | "${cli[@]}" user create --org bench-org --email "$EMAIL" \
        --role developer --password-stdin --json > /dev/null
    "${cli[@]}" api create --org bench-org --name Api --audience https://api.bench.test \
        --scopes scope-a --signing-alg "$ALG" --json > "$w-api.json"
    "${cli[@]}" api create --org bench-org --name Ref --audience https://ref.bench.test \
        --scopes scope-ref --signing-alg "$ALG" --token-format reference --json > "$w-ref.json"
    "${cli[@]}" app register --org bench-org --name App --grant client_credentials \
        --on-behalf-of "$EMAIL" --scopes scope-a --json > "$w-app.json"
    "${cli[@]}" app register --org bench-org --name RefApp --grant client_credentials \
        --on-behalf-of "$EMAIL" --scopes scope-ref --json > "$w-refapp.json"
    "${cli[@]}" app register --org bench-org --name Web --grant authorization_code \
        --redirect-uri "$REDIRECT" --require-pkce false --scopes scope-a --json > "$w-web.json"
    local id secret
    CC_AUTH[$k]="$(IFS=: read -r id secret <<< "$(creds_of "$w-app.json" client_secret)"; basic "$id" "$secret")"
    API_AUTH[$k]="$(IFS=: read -r id secret <<< "$(creds_of "$w-api.json" client_secret)"; basic "$id" "$secret")"
    REF_AUTH[$k]="$(IFS=: read -r id secret <<< "$(creds_of "$w-ref.json" client_secret)"; basic "$id" "$secret")"
    WEB[$k]="$(creds_of "$w-web.json" client_secret)"
    JWT[$k]="$(token_of "$k" "${CC_AUTH[$k]}")"
    REF[$k]="$(IFS=: read -r id secret <<< "$(creds_of "$w-refapp.json" client_secret)"; token_of "$k" "$(basic "$id" "$secret")")"
    SESSION[$k]="$w-session.json"
    [[ "$k" == cg_* ]] && return 0   # callgrind measures no code flow
    for i in $(seq 1 50); do
        python3 "$FLOWS" sign-in "${URL[$k]}" "${WEB[$k]%%:*}" "$REDIRECT" "scope-a offline_access" \
            "$EMAIL" "$PASSWORD" "${SESSION[$k]}" 2> "$w-sign-in.err" && break
        (( i < 50 )) || die "sign-in on $k failed: $(cat "$w-sign-in.err")"
        sleep 0.2
    done
    log "$k ready on ${URL[$k]} (pid ${PID[$k]})"
}

# token_of K AUTH: a client credentials access token (retried: the server may
# learn of a new app a moment after the CLI wrote it).
token_of() {
    local out="$WORK/$1-token.json" code=""
    for _ in $(seq 1 50); do
        code="$(curl -sS -o "$out" -w '%{http_code}' -H "Authorization: $2" \
            -d grant_type=client_credentials "${URL[$1]}/connect/token" || true)"
        [[ "$code" == 200 ]] && { json_get access_token < "$out"; return; }
        sleep 0.1
    done
    die "no token from $1 (status $code: $(cat "$out"))"
}

# Introspection bodies must answer active: a benchmark of `{"active":false}` proves nothing.
check_active() { # K AUTH TOKEN
    local body
    body="$(curl -sS -H "Authorization: $2" --data-urlencode "token=$3" "${URL[$1]}/connect/introspect")"
    [[ "$body" == *'"active":true'* ]] || die "introspection on $1 is not active: $body"
}

# families K N OUT: N refresh-token families (codes minted with the session, exchanged).
families() {
    python3 "$FLOWS" mint-codes "${SESSION[$1]}" "$2" "$WORK/$1-fcodes.txt" --concurrency 8 2>/dev/null
    python3 "$FLOWS" exchange "${SESSION[$1]}" "$WORK/$1-fcodes.txt" "$2" "$3" \
        --client "${WEB[$1]}" --concurrency 8 2>/dev/null
}

# pg_segs PID: data segments PID has sent to PostgreSQL so far, on its open connections.
pg_segs() {
    python3 - "$1" "$PG_PORT" "$ROOT/bench" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
import pg_report
socks = pg_report.pg_sockets({int(sys.argv[1])}, int(sys.argv[2]))
print(sum(v["out"] for v in socks.values()))
PY
}

RUNS="$WORK/runs.tsv"
: > "$RUNS"
# run ROUND K CASE MODE PATH AUTH [VAR=VALUE...]: one wrk run against server K;
# appends "round k case cpu_us_per_ok ok_per_s starved rt_per_ok" to RUNS.
run() {
    local round="$1" k="$2" case="$3" mode="$4" path="$5" auth="$6"; shift 6
    local out="$WORK/wrk-$k-$case-$round.json" pid="${PID[$k]}" before after seg0="" seg1="" t0 t1 idle=0
    if [[ "$k" == pg_* ]]; then
        seg0="$(pg_segs "$pid")"; t0="$(date +%s.%N)"
        sleep "$IDLE_S"
        seg1="$(pg_segs "$pid")"; t1="$(date +%s.%N)"
        idle="$(python3 -c "print(($seg1 - $seg0) / ($t1 - $t0))")"
    fi
    log "round $round: $case on $k"
    before="$(cpu_ticks "$pid")"
    t0="$(date +%s.%N)"
    local perf=""
    if [[ "${PERF:-}" == "$case" && ( "$k" == new || "$k" == pg_new ) && "$round" == 1 ]]; then
        # shellcheck disable=SC2086
        perf record ${PERF_ARGS:--F 999} -p "$pid" -o "$WORK/perf-$case.data" > /dev/null 2>&1 &
        perf=$!
    fi
    env WRK_MODE="$mode" WRK_AUTH="$auth" WRK_OUT="$out" WRK_THREADS=2 "$@" \
        wrk -t2 -c64 -d"$DURATION" --timeout 10s -s "$LUA" "${URL[$k]}$path" > "${out%.json}.txt"
    if [[ -n "$perf" ]]; then
        kill -INT "$perf"; wait "$perf" || true
        perf report -i "$WORK/perf-$case.data" --no-children --percent-limit 0.5 --stdio \
            > "${PERF_OUT:-$ROOT/bench/results/perf-$case.txt}" 2>/dev/null || true
        log "perf profile of $case: ${PERF_OUT:-$ROOT/bench/results/perf-$case.txt}"
    fi
    t1="$(date +%s.%N)"
    after="$(cpu_ticks "$pid")"
    kill -0 "$pid" 2>/dev/null || die "server $k died during $case"
    local seg2=""
    [[ -n "$seg1" ]] && seg2="$(pg_segs "$pid")"
    python3 - "$out" "$((after - before))" "$(getconf CLK_TCK)" "$DURATION_S" "$round" "$k" "$case" \
        "${seg1:-}" "${seg2:-}" "$idle" "$t0" "$t1" >> "$RUNS" <<'PY'
import json, sys
out, ticks, clk, secs, rnd, k, case, s1, s2, idle, t0, t1 = sys.argv[1:]
s = json.load(open(out))
ok = s["statusCodeDistribution"].get("200", 0)
cpu = int(ticks) / int(clk) * 1e6 / max(ok, 1)
rt = ""
if s1 and s2:
    rt = f"{(int(s2) - int(s1) - float(idle) * (float(t1) - float(t0))) / max(ok, 1):.2f}"
bad = {k2: v for k2, v in s["statusCodeDistribution"].items() if k2 != "200"}
if bad:
    print(f"[bench] {case} on {k}: non-200 answers {bad}: {s['wrk'].get('firstError', '')[:200]}",
          file=sys.stderr)
print(f"{rnd}\t{k}\t{case}\t{cpu:.1f}\t{ok / float(secs):.0f}\t{s['wrk'].get('starved', 0)}\t{rt}")
PY
}

LOADAVG_BEFORE="$(loadavg)"
start_hello
PID[hello]="$HELLO_PID"
URL[hello]="${HELLO_URL%/connect/token}"
serve base "$BASE_BIN" "sqlite://$WORK/base.db"
serve new "$NEW_BIN" "sqlite://$WORK/new.db"
SIDES=(base new)
if [[ "$PG" == 1 ]]; then
    command -v psql >/dev/null || die "psql not found (PG=0 skips PostgreSQL)"
    for k in base new; do
        d="gh_cmp_$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')_$k"
        psql -XAtq "$PG_SERVER/postgres" -c "CREATE DATABASE $d" >/dev/null
        PG_DBS+=("$d")
        serve "pg_$k" "${BIN[$k]}" "$PG_SERVER/$d"
    done
fi
for k in base new; do
    check_active "$k" "${API_AUTH[$k]}" "${JWT[$k]}"
    check_active "$k" "${REF_AUTH[$k]}" "${REF[$k]}"
done

# want CASE: whether CASES (empty: all) names it.
want() { [[ -z "${CASES:-}" || " $CASES " == *" $1 "* ]]; }
for r in $(seq 1 "$ROUNDS"); do
    run "$r" hello hello hello /connect/token "" WRK_BODY=grant_type=client_credentials
    # The same stack with one ES256 signature per request: client_credentials' floor.
    want cc && run "$r" hello sign_floor hello /floor/sign "" WRK_BODY=grant_type=client_credentials
    for k in "${SIDES[@]}"; do
        want cc && run "$r" "$k" cc hello /connect/token "${CC_AUTH[$k]}" WRK_BODY=grant_type=client_credentials
        want introspect_ref && run "$r" "$k" introspect_ref hello /connect/introspect "${REF_AUTH[$k]}" WRK_BODY="token=${REF[$k]}"
        want introspect_jwt && run "$r" "$k" introspect_jwt hello /connect/introspect "${API_AUTH[$k]}" WRK_BODY="token=${JWT[$k]}"
    done
    for k in "${SIDES[@]}"; do
        if want code; then
            log "minting $CODES codes on $k"
            python3 "$FLOWS" mint-codes "${SESSION[$k]}" "$CODES" "$WORK/$k-codes.txt" --concurrency 8
            run "$r" "$k" code code /connect/token "$(basic "${WEB[$k]%%:*}" "${WEB[$k]#*:}")" \
                WRK_INPUT="$WORK/$k-codes.txt" WRK_REDIRECT="$REDIRECT_ENC"
        fi
        if want refresh; then
            families "$k" "$FAMILIES" "$WORK/$k-families.txt"
            run "$r" "$k" refresh refresh /connect/token "$(basic "${WEB[$k]%%:*}" "${WEB[$k]#*:}")" \
                WRK_INPUT="$WORK/$k-families.txt"
        fi
    done
    if [[ "$PG" == 1 ]] && want pg_refresh; then
        for k in pg_base pg_new; do
            families "$k" "$FAMILIES" "$WORK/$k-families.txt"
            run "$r" "$k" refresh refresh /connect/token "$(basic "${WEB[$k]%%:*}" "${WEB[$k]#*:}")" \
                WRK_INPUT="$WORK/$k-families.txt"
        done
    fi
done
for k in "${!PID[@]}"; do [[ "$k" == hello ]] || stop_pid "${PID[$k]}"; done
stop_pid "$HELLO_PID"
drop_pg_dbs

# instructions K BIN CASE AUTH_VAR BODY_VAR PATH: callgrind instructions per request.
IRS="$WORK/irs.tsv"
: > "$IRS"
instructions() {
    local k="$1" bin="$2" port db pid cg="cg_$1"
    port="$(free_port)"
    db="sqlite://$WORK/$cg.db"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$cg.%p" \
        "$bin" --dev serve --listen "127.0.0.1:$port" --database-url "$db" --key-file "$WORK/$cg.key" \
        > "$WORK/$cg.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    PID[$cg]="$pid"
    URL[$cg]="http://127.0.0.1:$port"
    for _ in $(seq 1 600); do
        curl -fsS -o /dev/null --max-time 1 "${URL[$cg]}/health" 2>/dev/null && break
        sleep 0.2
    done
    setup "$cg" "$bin" "$db"
    local case path auth body dump n=1 t0 t1 idle_rate
    # The server's own work while idle (the change feed is polled every 10 ms),
    # per second: callgrind counts it too, and a request's share of it grows
    # with how slowly the requests ran (valgrind, a loaded machine). Taken off
    # each case's total below, as the PostgreSQL round trips are net of it.
    callgrind_control -z "$pid" > /dev/null
    t0="$(date +%s.%N)"; sleep "$IDLE_S"; t1="$(date +%s.%N)"
    callgrind_control -d "$pid" > /dev/null
    idle_rate="$(python3 - "$(ls "$WORK/$cg".*.1 | head -n1)" "$t0" "$t1" <<'PY'
import sys
total = 0
for line in open(sys.argv[1]):
    if line.startswith("summary:") or line.startswith("totals:"):
        total = int(line.split()[1])
print(total / (float(sys.argv[3]) - float(sys.argv[2])))
PY
)"
    log "callgrind: $k idle at $(printf '%.0f' "$idle_rate") instructions/s (taken off each case)"
    for case in cc introspect_ref introspect_jwt; do
        case "$case" in
            cc) path=/connect/token auth="${CC_AUTH[$cg]}" body=grant_type=client_credentials ;;
            introspect_ref) path=/connect/introspect auth="${REF_AUTH[$cg]}" body="token=${REF[$cg]}" ;;
            introspect_jwt) path=/connect/introspect auth="${API_AUTH[$cg]}" body="token=${JWT[$cg]}" ;;
        esac
        python3 "$ROOT/bench/compare_drive.py" "${URL[$cg]}$path" "$auth" 200 "$body" > /dev/null
        callgrind_control -z "$pid" > /dev/null
        t0="$(date +%s.%N)"
        python3 "$ROOT/bench/compare_drive.py" "${URL[$cg]}$path" "$auth" "$CALLGRIND_N" "$body" > /dev/null
        t1="$(date +%s.%N)"
        callgrind_control -d "$pid" > /dev/null
        n=$((n + 1))
        # Part n (the n-th dump asked for with -d) holds only that case's requests.
        dump="$(ls "$WORK/$cg".*."$n" | head -n1)"
        python3 - "$dump" "$CALLGRIND_N" "$k" "$case" "$idle_rate" "$t0" "$t1" >> "$IRS" <<'PY'
import sys
dump, n, k, case, idle_rate, t0, t1 = sys.argv[1:]
total = 0
for line in open(dump):
    if line.startswith("summary:") or line.startswith("totals:"):
        total = int(line.split()[1])
net = total - float(idle_rate) * (float(t1) - float(t0))
print(f"{k}\t{case}\t{net / int(n):.0f}")
PY
    done
    stop_pid "$pid"
}
# hello_instructions: callgrind instructions per request of the hello-world
# POST and of the same with one ES256 signature (sign_floor), the yardstick of
# the cases' counts (hello has no idle work to take off).
hello_instructions() {
    local port pid cg=cg_hello n=0 path case
    port="$(free_port)"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$cg.%p" "$HELLO" "127.0.0.1:$port" \
        > "$WORK/$cg.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 600); do
        curl -fsS -o /dev/null --max-time 1 -d 'x=1' "http://127.0.0.1:$port/connect/token" 2>/dev/null && break
        sleep 0.2
    done
    for case in hello sign_floor; do
        case "$case" in hello) path=/connect/token ;; sign_floor) path=/floor/sign ;; esac
        python3 "$ROOT/bench/compare_drive.py" "http://127.0.0.1:$port$path" "" 200 > /dev/null
        callgrind_control -z "$pid" > /dev/null
        python3 "$ROOT/bench/compare_drive.py" "http://127.0.0.1:$port$path" "" "$CALLGRIND_N" > /dev/null
        callgrind_control -d "$pid" > /dev/null
        n=$((n + 1))
        python3 - "$(ls "$WORK/$cg".*."$n" | head -n1)" "$CALLGRIND_N" "$case" >> "$IRS" <<'PY'
import sys
dump, n, case = sys.argv[1:]
total = 0
for line in open(dump):
    if line.startswith("summary:") or line.startswith("totals:"):
        total = int(line.split()[1])
print(f"hello\t{case}\t{total / int(n):.0f}")
PY
    done
    stop_pid "$pid"
}
if [[ "$CALLGRIND" == 1 ]]; then
    log "callgrind: $CALLGRIND_N requests per case and binary"
    hello_instructions
    instructions base "$BASE_BIN"
    instructions new "$NEW_BIN"
fi

python3 "$ROOT/bench/compare_report.py" "$RUNS" "$IRS" --out "$RESULTS" --alg "$ALG" \
    --duration "$DURATION" --rounds "$ROUNDS" --callgrind-n "$CALLGRIND_N" \
    --loadavg "$LOADAVG_BEFORE" --base "$BASE_DESC" --new "$(commit_id)" --families "$FAMILIES" \
    --codes "$CODES"
