#!/usr/bin/env bash
# The client credentials hot path, this commit against an earlier one, in one run.
#
# Both binaries serve a fresh SQLite file with the same org/user/API/app; each
# gets WARMUP tokens, then:
#   1. wrk (64 connections, DURATION) alternating base/new ROUNDS times: the
#      server's CPU time (utime+stime) per successful token, median of the rounds;
#   2. callgrind: the server's instructions per token over CALLGRIND_N sequential
#      requests after a warm-up (counters zeroed with callgrind_control), which
#      does not move with whatever else runs on the machine.
# A hello-world POST of the same stack is measured in the same run as the floor.
#
# Usage:  bench/compare.sh [BASE_REV]        (default: the merge base with HEAD~1)
# Env:    BASE_BIN=path   use this binary as the base instead of building BASE_REV
#         ALG=ES256 DURATION=10s ROUNDS=2 CALLGRIND_N=2000
#         RESULTS=bench/results/compare-latest.md
set -euo pipefail

ALG="${ALG:-ES256}"
DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-2}"
CALLGRIND_N="${CALLGRIND_N:-2000}"
BASE_REV="${1:-HEAD~1}"

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/results/compare-latest.md}"
if ! command -v wrk >/dev/null; then
    log "wrk not found: apt-get install wrk"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2 || die "wrk is not installed"
fi

build_release
NEW_BIN="$WORK/gatehouse-new"
cp "$GATEHOUSE" "$NEW_BIN"
if [[ -z "${BASE_BIN:-}" ]]; then
    log "building $BASE_REV for the base (a worktree under $WORK)"
    git -C "$ROOT" worktree add -q --detach "$WORK/base" "$BASE_REV"
    (cd "$WORK/base" && cargo build --release -p gatehouse) >&2
    BASE_BIN="$WORK/gatehouse-base"
    cp "$TARGET_DIR/release/gatehouse" "$BASE_BIN"
    git -C "$ROOT" worktree remove --force "$WORK/base"
fi
BASE_DESC="$(git -C "$ROOT" rev-parse --short "$BASE_REV" 2>/dev/null || echo "$BASE_BIN")"

# serve BIN NAME: a server of BIN on a fresh database with one app; sets
# PID_<NAME>, URL_<NAME>, AUTH_<NAME> (the app's Basic header value).
serve() {
    local bin="$1" name="$2" port db
    port="$(free_port)"
    db="sqlite://$WORK/$name.db"
    "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --key-file "$WORK/$name.key" \
        --failures-per-address 1000000 > "$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_http "http://127.0.0.1:$port/health" "$pid" "$name"
    setup_app "$bin" "$db" "$name"
    printf -v "PID_$name" %s "$pid"
    printf -v "URL_$name" %s "http://127.0.0.1:$port/connect/token"
}

setup_app() { # BIN DB NAME: org, user, API and app; sets AUTH_<NAME>
    local bin="$1" db="$2" name="$3"
    "$bin" --database-url "$db" org create --name "Bench Org" --json > /dev/null
    "$bin" --database-url "$db" user create --org bench-org --email bench@bench.test \
        --role developer --json > /dev/null
    "$bin" --database-url "$db" api create --org bench-org --name Api --audience https://api.bench.test \
        --scopes scope-a --signing-alg "$ALG" --json > /dev/null
    "$bin" --database-url "$db" app register --org bench-org --name App --grant client_credentials \
        --on-behalf-of bench@bench.test --scopes scope-a --json > "$WORK/$name-app.json"
    local id secret
    id="$(json_get client_id < "$WORK/$name-app.json")"
    secret="$(json_get client_secret < "$WORK/$name-app.json")"
    printf -v "AUTH_$name" %s "Basic $(printf '%s:%s' "$id" "$secret" | base64 -w0)"
}

token_ok() { # URL AUTH: one token request must answer 200
    local code
    for _ in $(seq 1 50); do
        code="$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: $2" \
            -d grant_type=client_credentials "$1" || true)"
        [[ "$code" == 200 ]] && return 0
        sleep 0.1
    done
    die "no token from $1 (status $code)"
}

# load NAME PID URL AUTH BODY: one wrk run; prints "cpu_us_per_ok ok_per_s"
load() {
    local name="$1" pid="$2" url="$3" auth="$4" body="$5" out="$WORK/wrk-$1.json" before after
    before="$(cpu_ticks "$pid")"
    WRK_MODE=hello WRK_AUTH="$auth" WRK_BODY="$body" WRK_OUT="$out" WRK_THREADS=2 \
        wrk -t2 -c64 -d"$DURATION" -s "$ROOT/bench/wrk/flows.lua" "$url" > "$WORK/wrk-$name.txt"
    after="$(cpu_ticks "$pid")"
    python3 - "$out" "$((after - before))" "$(getconf CLK_TCK)" "$DURATION" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ok = s["statusCodeDistribution"].get("200", 0)
secs = float(sys.argv[4].rstrip("s"))
print(f"{int(sys.argv[2]) / int(sys.argv[3]) * 1e6 / max(ok, 1):.1f} {ok / secs:.0f}")
PY
}

# instructions NAME BIN: callgrind instructions per token over CALLGRIND_N requests
instructions() {
    local name="$1" bin="$2" port db pid
    port="$(free_port)"
    db="sqlite://$WORK/cg-$name.db"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg-$name.%p" \
        "$bin" serve --listen "127.0.0.1:$port" --database-url "$db" --key-file "$WORK/cg-$name.key" \
        > "$WORK/cg-$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 600); do
        curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/health" 2>/dev/null && break
        sleep 0.2
    done
    setup_app "$bin" "$db" "cg_$name"
    local auth_var="AUTH_cg_$name" url="http://127.0.0.1:$port/connect/token"
    token_ok "$url" "${!auth_var}"
    python3 "$ROOT/bench/compare_drive.py" "$url" "${!auth_var}" 200 > /dev/null
    callgrind_control -z "$pid" > /dev/null
    python3 "$ROOT/bench/compare_drive.py" "$url" "${!auth_var}" "$CALLGRIND_N" > /dev/null
    callgrind_control -d "$pid" > /dev/null
    stop_pid "$pid"
    # Part 1 (the dump asked for with -d) holds only the measured requests; the
    # file without a part number is what ran after it (shutdown).
    local dump
    dump="$(ls "$WORK"/cg-"$name".*.1 | head -n1)"
    python3 - "$dump" "$CALLGRIND_N" <<'PY'
import sys
total = 0
for line in open(sys.argv[1]):
    if line.startswith("summary:") or line.startswith("totals:"):
        total = int(line.split()[1])
print(f"{total / int(sys.argv[2]):.0f}")
PY
}

LOADAVG_BEFORE="$(loadavg)"
start_hello
serve "$BASE_BIN" base
serve "$NEW_BIN" new
token_ok "$URL_base" "$AUTH_base"
token_ok "$URL_new" "$AUTH_new"

declare -a HELLO_CPU BASE_CPU NEW_CPU BASE_RPS NEW_RPS HELLO_RPS
for r in $(seq 1 "$ROUNDS"); do
    log "round $r/$ROUNDS"
    read -r c s < <(load "hello$r" "$HELLO_PID" "$HELLO_URL" "" 'grant_type=client_credentials')
    HELLO_CPU+=("$c"); HELLO_RPS+=("$s")
    read -r c s < <(load "base$r" "$PID_base" "$URL_base" "$AUTH_base" 'grant_type=client_credentials')
    BASE_CPU+=("$c"); BASE_RPS+=("$s")
    read -r c s < <(load "new$r" "$PID_new" "$URL_new" "$AUTH_new" 'grant_type=client_credentials')
    NEW_CPU+=("$c"); NEW_RPS+=("$s")
done
stop_pid "$PID_base"; stop_pid "$PID_new"; stop_pid "$HELLO_PID"

log "callgrind: $CALLGRIND_N tokens per binary"
IR_BASE="$(instructions base "$BASE_BIN")"
IR_NEW="$(instructions new "$NEW_BIN")"

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
python3 - "$RESULTS" "$ALG" "$DURATION" "$ROUNDS" "$CALLGRIND_N" "$LOADAVG_BEFORE" "$BASE_DESC" "$(commit_id)" \
    "$(median "${HELLO_CPU[@]}")" "$(median "${HELLO_RPS[@]}")" \
    "$(median "${BASE_CPU[@]}")" "$(median "${BASE_RPS[@]}")" \
    "$(median "${NEW_CPU[@]}")" "$(median "${NEW_RPS[@]}")" "$IR_BASE" "$IR_NEW" <<'PY'
import sys
(out, alg, dur, rounds, n, load, base, new, hc, hr, bc, br, nc, nr, ib, inew) = sys.argv[1:]
hc, hr, bc, br, nc, nr, ib, inew = map(float, (hc, hr, bc, br, nc, nr, ib, inew))
rows = [
    ("hello-world POST (axum)", hr, hc, "—", "—"),
    (f"client_credentials {alg}, base {base}", br, bc, f"{bc / hc:.2f}", f"{ib:,.0f}"),
    (f"client_credentials {alg}, this commit {new}", nr, nc, f"{nc / hc:.2f}", f"{inew:,.0f}"),
]
md = [f"# Client credentials: this commit against {base}", "",
      f"wrk 64 connections, {dur} per run, median of {rounds} alternating rounds; "
      f"callgrind over {int(n)} sequential tokens after 200 warm-up ones. Load average before: {load}.", "",
      "| case | tokens/s | server CPU µs/token | CPU vs hello | instructions/token |",
      "|---|---:|---:|---:|---:|"]
md += [f"| {a} | {b:,.0f} | {c:.1f} | {d} | {e} |" for a, b, c, d, e in rows]
md += ["", f"CPU per token, this commit / base: **{nc / bc:.3f}**; "
       f"instructions per token, this commit / base: **{inew / ib:.3f}**."]
text = "\n".join(md) + "\n"
open(out, "w").write(text)
print(text)
PY
