# Shared by the bench/*.sh scripts: source it, do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sets ROOT (and cd's there), TARGET_DIR, GATEHOUSE, HELLO, REPORT, WORK (a temp
# directory removed on exit) and PIDS (servers killed on exit), and defines the
# helpers below. The caller keeps `set -euo pipefail`.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# The packages' profile (Cargo.toml: release plus cross-crate LTO), so the
# figures are what operators run; BENCH_PROFILE=release measures the lighter one.
BENCH_PROFILE="${BENCH_PROFILE:-dist}"
GATEHOUSE="$TARGET_DIR/$BENCH_PROFILE/gatehouse"
HELLO="$TARGET_DIR/$BENCH_PROFILE/gatehouse-bench-hello"
REPORT="$ROOT/bench/report.py"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")"
PIDS=()
# A process this script started: TERM, then KILL after 5 s.
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
    for pid in "${PIDS[@]:-}"; do
        stop_pid "$pid"
    done
    if [[ $rc -ne 0 && -d "$WORK" ]]; then
        for f in "$WORK"/*.log; do
            [[ -s "$f" ]] || continue
            log "last lines of $(basename "$f"):"
            tail -n 20 "$f" >&2 || true
        done
    fi
    if [[ -n "${KEEP_WORK:-}" ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- build, tools
build_release() {
    log "building release binaries (may wait for another cargo's lock)"
    cargo build --profile "$BENCH_PROFILE" -p gatehouse -p gatehouse-bench-hello
    [[ -x "$GATEHOUSE" && -x "$HELLO" ]] || die "binaries not found under $TARGET_DIR/$BENCH_PROFILE"
}

# Sets OHA.
ensure_oha() {
    export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
    if ! command -v oha >/dev/null 2>&1; then
        log "oha not found: cargo install oha"
        cargo install oha --locked || cargo install oha
    fi
    OHA="$(command -v oha)" || die "oha is not installed"
    log "load generator: $("$OHA" --version 2>/dev/null | head -n1)"
}

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
# Busy ticks of the whole machine (all CPUs: everything but idle and iowait).
machine_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

wait_http() { # URL PID NAME
    for _ in $(seq 1 300); do
        kill -0 "$2" 2>/dev/null || die "$3 exited before answering"
        if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$3 did not answer $1 within 30 s"
}

json_get() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# start_hello: the hello-world server; sets HELLO_PID and HELLO_URL (its token path).
start_hello() {
    local port
    port="$(pick_port "${HELLO_PORT:-18181}")"
    "$HELLO" "127.0.0.1:$port" > "$WORK/hello.log" 2>&1 &
    HELLO_PID=$!
    PIDS+=("$HELLO_PID")
    HELLO_URL="http://127.0.0.1:$port/connect/token"
    # A GET answers 405, which curl -f treats as failure: probe with the real POST.
    for _ in $(seq 1 300); do
        kill -0 "$HELLO_PID" 2>/dev/null || die "hello server exited"
        curl -fsS -o /dev/null --max-time 1 -d 'x=1' "$HELLO_URL" 2>/dev/null && return 0
        sleep 0.1
    done
    die "hello server did not answer $HELLO_URL within 30 s"
}

# start_gatehouse [extra serve args...]: Gatehouse on a fresh SQLite file; sets
# GH_PID, GH_URL and DB, and defines gh (the CLI on the same database).
start_gatehouse() {
    local port
    port="$(pick_port "${GATEHOUSE_PORT:-18182}")"
    DB="sqlite://$WORK/gh.db"
    GH_URL="http://127.0.0.1:$port"
    RUST_LOG="${RUST_LOG:-info}" "$GATEHOUSE" serve --listen "127.0.0.1:$port" \
        --database-url "$DB" --key-file "$WORK/gh.key" \
        --failures-per-address 1000000 "$@" > "$WORK/gatehouse.log" 2>&1 &
    GH_PID=$!
    PIDS+=("$GH_PID")
    wait_http "$GH_URL/health" "$GH_PID" gatehouse
    log "gatehouse up on $GH_URL (pid $GH_PID)"
}
gh() { "$GATEHOUSE" --database-url "$DB" "$@"; }

commit_id() { # HEAD, marked +dirty when the sources measured differ from it
    local c
    c="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)" || { echo unknown; return; }
    git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || c="$c+dirty"
    echo "$c"
}
