#!/usr/bin/env bash
# Gateway benchmark, in one run: the upstream (crates/bench-hello, GET
# /v1/products/get-status) called directly, through a pass-through proxy of the
# same stack without validation (gatehouse-bench-proxy, the gateway crate's own
# proxy), and through `gatehouse gateway` with an ES256 JWT. Reports requests/s,
# p50/p99, the ratio to the pass-through proxy and the p50 the gateway adds; then
# the memory of the revocation set for 100 000 ended grants (an #[ignore]d test in
# crates/gateway/src/revoked.rs, run with --release --nocapture).
# Writes bench/results/gateway-latest.md.
#
# Usage:  bench/gateway.sh
# Env:    DURATION=10s CONNECTIONS=64 THREADS=$(nproc)
#         RESULTS=bench/results/gateway-latest.md  KEEP_WORK=1
#
# A benchmark, not a test: it fails only when it cannot measure.
set -euo pipefail

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-$(nproc)}"

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/results/gateway-latest.md}"
PROXY="$TARGET_DIR/$BENCH_PROFILE/gatehouse-bench-proxy"

build_release
[[ -x "$PROXY" ]] || die "gatehouse-bench-proxy not built"
if ! command -v wrk >/dev/null 2>&1; then
    log "wrk not found: apt-get install -y wrk"
    apt-get install -y wrk >&2 || die "cannot install wrk (apt-get install -y wrk)"
fi
WRK="$(command -v wrk)"
PATH_Q="/v1/products/get-status?productCode=gcs1"
AUD="https://gateway.acme.test"

# ---------------------------------------------------------------- servers
start_hello
UP="${HELLO_URL%/connect/token}"
wait_http "$UP$PATH_Q" "$HELLO_PID" hello

PROXY_PORT="$(free_port)"
"$PROXY" "127.0.0.1:$PROXY_PORT" "$UP" > "$WORK/proxy.log" 2>&1 &
PROXY_PID=$!; PIDS+=("$PROXY_PID")
wait_http "http://127.0.0.1:$PROXY_PORT$PATH_Q" "$PROXY_PID" proxy

start_gatehouse
gh org create --name "Acme Studio" >/dev/null
gh user create --org acme-studio --email dev@acme.test --role developer >/dev/null
API_JSON="$(gh api create --org acme-studio --name Gateway --audience "$AUD" --scopes cfgateway --json)"
APP_JSON="$(gh app register --org acme-studio --name Bench --grant client_credentials \
    --on-behalf-of dev@acme.test --scopes cfgateway --json)"
API_ID="$(json_get client_id <<<"$API_JSON")"
API_SECRET="$(json_get client_secret <<<"$API_JSON")"
APP_ID="$(json_get client_id <<<"$APP_JSON")"
APP_SECRET="$(json_get client_secret <<<"$APP_JSON")"
TOKEN="$(curl -fsS -u "$APP_ID:$APP_SECRET" -d grant_type=client_credentials -d scope=cfgateway \
    "$GH_URL/connect/token" | json_get access_token)"

GW_PORT="$(free_port)"
GATEHOUSE_GATEWAY_API_CLIENT_SECRET="$API_SECRET" "$GATEHOUSE" gateway \
    --listen "127.0.0.1:$GW_PORT" --issuer "$GH_URL" --audience "$AUD" \
    --api-client-id "$API_ID" --upstream "$UP" --route "GET /v1/products/*=cfgateway" \
    > "$WORK/gateway.log" 2>&1 &
GW_PID=$!; PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/health" "$GW_PID" gateway
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW_PORT$PATH_Q")"
[[ "$code" == 200 ]] || die "the gateway answered $code to a good token"

# ---------------------------------------------------------------- runs
# run NAME URL [HEADER]: prints "name req/s p50_ms p99_ms non2xx"
run() {
    local name="$1" url="$2" out="$WORK/wrk-$1.txt"
    local hdr=()
    [[ -n "${3:-}" ]] && hdr=(-H "$3")
    "$WRK" -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency "${hdr[@]}" "$url" > "$out"
    python3 - "$name" "$out" <<'PY'
import re, sys
name, path = sys.argv[1], sys.argv[2]
text = open(path).read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
print(f"{name}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{bad.group(1) if bad else 0}")
PY
}
log "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION per case"
ROWS="$WORK/rows.tsv"
run direct "$UP$PATH_Q" >> "$ROWS"
run passthrough "http://127.0.0.1:$PROXY_PORT$PATH_Q" >> "$ROWS"
run gateway "http://127.0.0.1:$GW_PORT$PATH_Q" "Authorization: Bearer $TOKEN" >> "$ROWS"
GW_RSS_KB="$(status_kb "$GW_PID" VmRSS)"

log "revocation-set memory (cargo test --release, ignored test)"
MEM_LINE="$(cargo test --release -q -p gatehouse-gateway --lib -- --ignored revoked_grants_memory --nocapture 2>/dev/null \
    | grep 'revocation set' || echo 'revocation set: not measured')"

# ---------------------------------------------------------------- report
python3 - "$ROWS" "$RESULTS" "$(commit_id)" "$CONNECTIONS" "$DURATION" "$MEM_LINE" "$GW_RSS_KB" <<'PY'
import sys
rows_path, out, commit, conns, dur, mem, rss = sys.argv[1:]
rows = {}
for line in open(rows_path):
    n, rps, p50, p99, bad = line.split("\t")
    rows[n] = (float(rps), float(p50), float(p99), int(bad))
base = rows["passthrough"]
label = {"direct": "upstream called directly", "passthrough": "pass-through proxy (no validation)",
         "gateway": "gatehouse gateway, ES256 JWT"}
lines = [
    f"# Gateway benchmark (commit {commit})", "",
    f"wrk, {conns} connections, {dur} per case, on this machine (2 vCPU, load generator on the same cores).", "",
    "| case | req/s | p50 ms | p99 ms | vs pass-through | added p50 µs | non-2xx |",
    "|---|---:|---:|---:|---:|---:|---:|",
]
for k in ["direct", "passthrough", "gateway"]:
    rps, p50, p99, bad = rows[k]
    added = f"{(p50 - base[1]) * 1000:.0f}" if k == "gateway" else "—"
    lines.append(f"| {label[k]} | {rps:,.0f} | {p50:.3f} | {p99:.3f} | {rps / base[0]:.2f} | {added} | {bad} |")
lines += ["", f"Goal: ≥ 0.80 of the pass-through's throughput and < 100 µs added to p50.", "",
          f"Memory: {mem.strip()} (hashbrown tables of 128-bit id digests, computed from their capacity by "
          "`cargo test --release -p gatehouse-gateway -- --ignored revoked_grants_memory --nocapture`). "
          f"The gateway process's RSS after the runs: {int(rss) / 1024:.1f} MB.", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
log "wrote $RESULTS"
