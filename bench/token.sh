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

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
ALGS="${ALGS:-ES256 EdDSA RS256}"

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/results/token-latest.md}"

# ---------------------------------------------------------------- 1. build
build_release

# ---------------------------------------------------------------- 2. oha
ensure_oha

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
start_hello
run_load hello "$HELLO_PID" "$HELLO_URL" \
    -d 'grant_type=client_credentials&scope=cfgateway'
stop_pid "$HELLO_PID"

# ---------------------------------------------------------------- 5. gatehouse
start_gatehouse

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
