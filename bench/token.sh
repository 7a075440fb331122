#!/usr/bin/env bash
# Token endpoint benchmark: Gatehouse's POST /connect/token (client credentials,
# one signing algorithm at a time) against a hello-world POST on the same stack
# (axum + tokio, crates/bench-hello). Prints a table and writes it as Markdown to
# bench/results/token-latest.md.
#
# Usage:  bench/token.sh
# Env:    DURATION=10s      how long each load run lasts (oha -z)
#         CONNECTIONS=64    concurrent connections (oha -c)
#         ALGS="ES256 EdDSA RS256"
#         HELLO_PORT=18181 GATEHOUSE_PORT=18182   (a busy port is swapped for a free one)
#         RESULTS=bench/results/token-latest.md
#
# This is a benchmark, not a test: it fails only when it cannot measure (a build
# fails, a server does not come up, setup fails). Non-200 answers are counted and
# reported, not fatal.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
ALGS="${ALGS:-ES256 EdDSA RS256}"
RESULTS="${RESULTS:-$ROOT/bench/results/token-latest.md}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
GATEHOUSE="$TARGET_DIR/release/gatehouse"
HELLO="$TARGET_DIR/release/gatehouse-bench-hello"
REPORT="$ROOT/bench/report.py"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")"
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]:-}"; do
        [[ -n "$pid" ]] || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [[ $rc -ne 0 && -d "$WORK" ]]; then
        for f in "$WORK"/*.log; do
            [[ -s "$f" ]] || continue
            log "last lines of $(basename "$f"):"
            tail -n 20 "$f" >&2 || true
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- 1. build
log "building release binaries (may wait for another cargo's lock)"
cargo build --release -p gatehouse -p gatehouse-bench-hello
[[ -x "$GATEHOUSE" && -x "$HELLO" ]] || die "binaries not found under $TARGET_DIR/release"

# ---------------------------------------------------------------- 2. oha
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
if ! command -v oha >/dev/null 2>&1; then
    log "oha not found: cargo install oha"
    cargo install oha --locked || cargo install oha
fi
OHA="$(command -v oha)" || die "oha is not installed"
log "load generator: $("$OHA" --version 2>/dev/null | head -n1)"

# ---------------------------------------------------------------- helpers
port_free() { python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
pick_port() { if port_free "$1"; then echo "$1"; else free_port; fi; }

# utime+stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat;
# the command name in field 2 may hold spaces, so cut after its closing paren).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

wait_http() { # URL PID NAME
    for _ in $(seq 1 300); do
        kill -0 "$2" 2>/dev/null || die "$3 exited before answering"
        if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$3 did not answer $1 within 30 s"
}

CASES="$WORK/cases.tsv"
: > "$CASES"

# run_load NAME PID URL [extra oha args...]: one oha run, CPU of PID measured around it.
run_load() {
    local name="$1" pid="$2" url="$3"; shift 3
    local out="$WORK/oha-$name.json"
    log "load: $name, $CONNECTIONS connections for $DURATION"
    local before after
    before="$(cpu_ticks "$pid")"
    python3 "$REPORT" run "$out" -- "$OHA" -z "$DURATION" -c "$CONNECTIONS" --no-tui \
        --output-format json -m POST \
        -H 'Content-Type: application/x-www-form-urlencoded' "$@" "$url"
    after="$(cpu_ticks "$pid")"
    kill -0 "$pid" 2>/dev/null || die "server for $name died under load"
    printf '%s\t%s\t%s\t%s\n' "$name" "$out" "$((after - before))" "$out.cpu" >> "$CASES"
}

# The machine's load before any load is applied: other work on these few cores
# (a compile, tests) skews every figure, so the report shows it.
LOADAVG_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- 3+4. hello world
HELLO_PORT="$(pick_port "${HELLO_PORT:-18181}")"
"$HELLO" "127.0.0.1:$HELLO_PORT" > "$WORK/hello.log" 2>&1 &
HELLO_PID=$!
PIDS+=("$HELLO_PID")
# A GET answers 405, which curl -f treats as failure: probe with the real POST.
for _ in $(seq 1 300); do
    kill -0 "$HELLO_PID" 2>/dev/null || die "hello server exited"
    curl -fsS -o /dev/null --max-time 1 -d 'x=1' "http://127.0.0.1:$HELLO_PORT/connect/token" 2>/dev/null && break
    sleep 0.1
done
run_load hello "$HELLO_PID" "http://127.0.0.1:$HELLO_PORT/connect/token" \
    -d 'grant_type=client_credentials&scope=cfgateway'
kill -TERM "$HELLO_PID" 2>/dev/null || true
wait "$HELLO_PID" 2>/dev/null || true

# ---------------------------------------------------------------- 5. gatehouse
GH_PORT="$(pick_port "${GATEHOUSE_PORT:-18182}")"
DB="sqlite://$WORK/gh.db"
GH_URL="http://127.0.0.1:$GH_PORT"
gh() { "$GATEHOUSE" --database-url "$DB" "$@"; }

RUST_LOG="${RUST_LOG:-info}" "$GATEHOUSE" serve --listen "127.0.0.1:$GH_PORT" \
    --database-url "$DB" --key-file "$WORK/gh.key" \
    --failures-per-address 1000000 > "$WORK/gatehouse.log" 2>&1 &
GH_PID=$!
PIDS+=("$GH_PID")
wait_http "$GH_URL/health" "$GH_PID" gatehouse
log "gatehouse up on $GH_URL (pid $GH_PID)"

json_get() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

gh org create --name "Bench Org" --json > "$WORK/org.json"
gh user create --org bench-org --email bench@bench.test --role developer --json > "$WORK/user.json"
declare -A CREDS
for alg in $ALGS; do
    gh api create --org bench-org --name "Api $alg" --audience "https://$alg.bench.test" \
        --scopes "scope-$alg" --signing-alg "$alg" --json > "$WORK/api-$alg.json"
    gh app register --org bench-org --name "App $alg" --grant client_credentials \
        --on-behalf-of bench@bench.test --scopes "scope-$alg" --json > "$WORK/app-$alg.json"
    id="$(json_get client_id < "$WORK/app-$alg.json")"
    secret="$(json_get client_secret < "$WORK/app-$alg.json")"
    CREDS[$alg]="$id:$secret"
done

# One token per algorithm first: proves the setup works and that the token is
# signed with the algorithm asked for. The server may learn of new apps a moment
# after the CLI wrote them, so retry briefly.
for alg in $ALGS; do
    ok=""
    for _ in $(seq 1 50); do
        code="$(curl -sS -o "$WORK/token-$alg.json" -w '%{http_code}' --max-time 5 \
            -u "${CREDS[$alg]}" -d grant_type=client_credentials "$GH_URL/connect/token" || true)"
        if [[ "$code" == 200 ]]; then ok=1; break; fi
        sleep 0.2
    done
    [[ -n "$ok" ]] || die "no token for $alg (last status $code: $(cat "$WORK/token-$alg.json" 2>/dev/null))"
    python3 "$REPORT" check-token "$WORK/token-$alg.json" "$alg" "scope-$alg" || die "token for $alg is not as expected"
done

IDLE_RSS_KB="$(status_kb "$GH_PID" VmRSS)"

for alg in $ALGS; do
    run_load "$alg" "$GH_PID" "$GH_URL/connect/token" \
        -a "${CREDS[$alg]}" -d 'grant_type=client_credentials'
done

PEAK_RSS_KB="$(status_kb "$GH_PID" VmHWM)"
FINAL_RSS_KB="$(status_kb "$GH_PID" VmRSS)"

# ---------------------------------------------------------------- 6. report
commit_id() { # HEAD, marked +dirty when the sources measured differ from it
    local c
    c="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)" || { echo unknown; return; }
    git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || c="$c+dirty"
    echo "$c"
}
mkdir -p "$(dirname "$RESULTS")"
python3 "$REPORT" summarize "$CASES" \
    --clk-tck "$(getconf CLK_TCK)" \
    --duration "$DURATION" --connections "$CONNECTIONS" \
    --idle-rss-kb "$IDLE_RSS_KB" --peak-rss-kb "$PEAK_RSS_KB" --final-rss-kb "$FINAL_RSS_KB" \
    --oha "$("$OHA" --version 2>/dev/null | head -n1)" \
    --loadavg "$LOADAVG_BEFORE" \
    --commit "$(commit_id)" \
    --markdown "$RESULTS"
log "wrote ${RESULTS#"$ROOT"/}"
