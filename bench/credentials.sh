#!/usr/bin/env bash
# Issue 13's speed figures, in one run on one server and gateway:
#   client_credentials with a client secret (Basic) against the same grant
#   with a private_key_jwt assertion (ES256, each request its own jti: the
#   assertions are signed beforehand by bench/jwts.py, python `cryptography`);
#   the gateway with a bearer ES256 JWT against the gateway with a DPoP-bound
#   one (each request its own proof, signed beforehand likewise).
# wrk, CONNECTIONS connections, DURATION per case, ROUNDS rounds alternating
# the pair; reports the median req/s, the server's (or gateway's) CPU µs per
# request, and the ratios the issue sets goals for (≥ 0.5 and ≥ 0.7).
# Writes bench/results/credentials-latest.md.
#
# Usage:  bench/credentials.sh
# Env:    DURATION=10s CONNECTIONS=64 ROUNDS=2 THREADS=$(nproc)
#         SOAK_BIN_DIR=DIR (take gatehouse and gatehouse-bench-hello from DIR)
#         RESULTS=bench/results/credentials-latest.md KEEP_WORK=1
#         PERF=CASE  perf-records the server (or gateway) during CASE's first
#                    round (cc_secret, cc_private_key_jwt, gw_bearer, gw_dpop)
#                    into PERF_OUT (default bench/results/perf-CASE.txt)
#         PERF_ARGS="-F 999"  perf record's options
#
# A benchmark, not a test: it fails only when it cannot measure.
set -euo pipefail

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
ROUNDS="${ROUNDS:-2}"
THREADS="${THREADS:-$(nproc)}"

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS="${RESULTS:-$ROOT/bench/results/credentials-latest.md}"
if [[ -n "${SOAK_BIN_DIR:-}" ]]; then
    GATEHOUSE="$SOAK_BIN_DIR/gatehouse"
    HELLO="$SOAK_BIN_DIR/gatehouse-bench-hello"
else
    build_release
fi
WRK="$(command -v wrk)" || die "wrk not found: apt-get install -y wrk"
python3 -c "import cryptography" 2>/dev/null || die "python cryptography not found: pip install cryptography"
JWTS="$ROOT/bench/jwts.py"
LUA="$ROOT/bench/wrk/lines.lua"
SECS="${DURATION%s}"
PATH_Q="/v1/products/get-status?productCode=gcs1"
AUD="https://gateway.acme.test"

# ---------------------------------------------------------------- set-up
start_hello
UP="${HELLO_URL%/connect/token}"
start_gatehouse
gh org create --name "Acme Studio" >/dev/null
gh user create --org acme-studio --email dev@acme.test --role developer >/dev/null
API_JSON="$(gh api create --org acme-studio --name Gateway --audience "$AUD" --scopes cfgateway --json)"
APP_JSON="$(gh app register --org acme-studio --name Secret --grant client_credentials \
    --on-behalf-of dev@acme.test --scopes cfgateway --json)"
python3 "$JWTS" "$WORK/key.pem" key > "$WORK/jwks.json"
KEY_JSON="$(gh app register --org acme-studio --name Keyed --grant client_credentials \
    --on-behalf-of dev@acme.test --scopes cfgateway --auth-method private_key_jwt \
    --jwks-file "$WORK/jwks.json" --json)"
API_ID="$(json_get client_id <<<"$API_JSON")"
API_SECRET="$(json_get client_secret <<<"$API_JSON")"
APP_ID="$(json_get client_id <<<"$APP_JSON")"
APP_SECRET="$(json_get client_secret <<<"$APP_JSON")"
KEY_ID="$(json_get client_id <<<"$KEY_JSON")"
TOKEN_URL="$GH_URL/connect/token"

BEARER="$(curl -fsS -u "$APP_ID:$APP_SECRET" -d grant_type=client_credentials -d scope=cfgateway \
    "$TOKEN_URL" | json_get access_token)"
PROOF="$(python3 "$JWTS" "$WORK/key.pem" proofs POST "$TOKEN_URL" - 1)"
BOUND_JSON="$(curl -fsS -u "$APP_ID:$APP_SECRET" -H "DPoP: $PROOF" -d grant_type=client_credentials \
    -d scope=cfgateway "$TOKEN_URL")"
[[ "$(json_get token_type <<<"$BOUND_JSON")" == DPoP ]] || die "no DPoP-bound token: $BOUND_JSON"
BOUND="$(json_get access_token <<<"$BOUND_JSON")"

GW_PORT="$(free_port)"
GW_URL="http://127.0.0.1:$GW_PORT"
GATEHOUSE_GATEWAY_API_CLIENT_SECRET="$API_SECRET" "$GATEHOUSE" gateway \
    --listen "127.0.0.1:$GW_PORT" --issuer "$GH_URL" --audience "$AUD" \
    --api-client-id "$API_ID" --upstream "$UP" --route "GET /v1/products/*=cfgateway" \
    > "$WORK/gateway.log" 2>&1 &
GW_PID=$!; PIDS+=("$GW_PID")
wait_http "$GW_URL/health" "$GW_PID" gateway
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BEARER" "$GW_URL$PATH_Q")"
[[ "$code" == 200 ]] || die "the gateway answered $code to a bearer token"
P1="$(python3 "$JWTS" "$WORK/key.pem" proofs GET "$GW_URL/v1/products/get-status" "$BOUND" 1)"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: DPoP $BOUND" -H "DPoP: $P1" "$GW_URL$PATH_Q")"
[[ "$code" == 200 ]] || die "the gateway answered $code to a DPoP-bound token with its proof"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BOUND" "$GW_URL$PATH_Q")"
[[ "$code" == 401 ]] || die "the gateway answered $code to a DPoP-bound token sent as bearer"

# ---------------------------------------------------------------- runs
# wrk_run NAME PID URL [wrk args...]: prints "name req/s cpu_us_per_request non2xx"
wrk_run() {
    local name="$1" pid="$2" url="$3"; shift 3
    local out="$WORK/wrk-$name.txt" t0 t1
    local perf="" perf_out="${PERF_OUT:-$ROOT/bench/results/perf-$name.txt}"
    if [[ "${PERF:-}" == "$name" && "$r" == 1 ]]; then
        # shellcheck disable=SC2086
        # System-wide (-a), so threads started during the run (a connection's
        # worker) are recorded too; the report keeps this process's samples.
        perf record ${PERF_ARGS:--F 999} -a -o "$WORK/perf-$name.data" > /dev/null 2>&1 &
        perf=$!
    fi
    t0="$(cpu_ticks "$pid")"
    "$WRK" -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" "$@" "$url" > "$out"
    t1="$(cpu_ticks "$pid")"
    if [[ -n "$perf" ]]; then
        kill -INT "$perf"; wait "$perf" || true
        perf report -i "$WORK/perf-$name.data" --pid "$pid" --no-children --sort comm,dso,sym \
            --percent-limit 0.5 --stdio \
            > "$perf_out" 2>/dev/null || true
        log "perf profile of $name: $perf_out"
    fi
    python3 - "$name" "$out" "$t0" "$t1" "$(getconf CLK_TCK)" <<'PY'
import re, sys
name, path, t0, t1, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
text = open(path).read()
total = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
bad = int(bad.group(1)) if bad else 0
ok = max(total - bad, 1)
print(f"{name}\t{rps * ok / total:.0f}\t{(t1 - t0) / hz * 1e6 / ok:.1f}\t{bad}")
PY
}
# Enough single-use values for a run at up to 10,000 assertions/s and
# 40,000 proofs/s (a value used twice is refused: counted as non-2xx).
N=$(( SECS * 10000 ))
NP=$(( SECS * 40000 ))
ROWS="$WORK/rows.tsv"
log "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION per case, $ROUNDS rounds"
printf 'wrk.method = "POST"\nwrk.body = "grant_type=client_credentials"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n' \
    > "$WORK/post.lua"
for r in $(seq 1 "$ROUNDS"); do
    # The floors: the same stack answering a POST, and with one ES256 check per
    # request on a parsed key (what each assertion and each proof needs at least).
    log "round $r: floors"
    wrk_run hello "$HELLO_PID" "$UP/connect/token" -s "$WORK/post.lua" >> "$ROWS"
    wrk_run hello_verify "$HELLO_PID" "$UP/floor/verify" -s "$WORK/post.lua" >> "$ROWS"
    log "round $r: client_credentials"
    python3 "$JWTS" "$WORK/key.pem" assertions "$KEY_ID" "$TOKEN_URL" "$N" > "$WORK/assertions.txt"
    SCRIPT="$WORK/secret.lua"
    printf 'wrk.method = "POST"\nwrk.body = "grant_type=client_credentials&scope=cfgateway"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\nwrk.headers["Authorization"] = "Basic %s"\n' \
        "$(printf '%s:%s' "$APP_ID" "$APP_SECRET" | base64 -w0)" > "$SCRIPT"
    wrk_run cc_secret "$GH_PID" "$TOKEN_URL" -s "$SCRIPT" >> "$ROWS"
    WRK_THREADS="$THREADS" LINES_FILE="$WORK/assertions.txt" MODE=assertion SCOPE=cfgateway \
        wrk_run cc_private_key_jwt "$GH_PID" "$TOKEN_URL" -s "$LUA" >> "$ROWS"
    log "round $r: gateway"
    wrk_run gw_bearer "$GW_PID" "$GW_URL$PATH_Q" -H "Authorization: Bearer $BEARER" >> "$ROWS"
    python3 "$JWTS" "$WORK/key.pem" proofs GET "$GW_URL/v1/products/get-status" "$BOUND" "$NP" > "$WORK/proofs.txt"
    WRK_THREADS="$THREADS" LINES_FILE="$WORK/proofs.txt" MODE=dpop TOKEN="$BOUND" \
        wrk_run gw_dpop "$GW_PID" "$GW_URL$PATH_Q" -s "$LUA" >> "$ROWS"
done

# ---------------------------------------------------------------- report
python3 - "$ROWS" "$RESULTS" "$(commit_id)" "$CONNECTIONS" "$DURATION" "$ROUNDS" "$(loadavg)" <<'PY'
import statistics, sys
rows_path, out, commit, conns, dur, rounds, load = sys.argv[1:]
runs = {}
for line in open(rows_path):
    n, rps, cpu, bad = line.rstrip("\n").split("\t")
    runs.setdefault(n, []).append((float(rps), float(cpu), int(bad)))
med = {n: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), sum(r[2] for r in v))
       for n, v in runs.items()}
label = {"cc_secret": "client_credentials, client secret (Basic)",
         "cc_private_key_jwt": "client_credentials, private_key_jwt (ES256 assertion)",
         "gw_bearer": "gateway, bearer ES256 JWT",
         "gw_dpop": "gateway, DPoP-bound ES256 JWT + ES256 proof"}
lines = [f"# Issue 13's speed figures (commit {commit})", "",
         f"wrk, {conns} connections, {dur} per case, median of {rounds} rounds; the load generator shares "
         f"the 2 cores; load average at the end: {load}. CPU = the server's (or gateway's) utime+stime per "
         "2xx answer; each assertion and proof is used once (signed beforehand by bench/jwts.py).", "",
         "| case | 2xx/s | CPU µs per request | non-2xx |", "|---|---:|---:|---:|"]
for k in label:
    rps, cpu, bad = med[k]
    lines.append(f"| {label[k]} | {rps:,.0f} | {cpu:.1f} | {bad} |")
pk = med["cc_private_key_jwt"][0] / med["cc_secret"][0]
dp = med["gw_dpop"][0] / med["gw_bearer"][0]
lines += ["",
          f"- private_key_jwt ÷ secret: **{pk:.2f}×** req/s (goal ≥ 0.5), "
          f"CPU {med['cc_private_key_jwt'][1] / med['cc_secret'][1]:.2f}× per request",
          f"- DPoP ÷ bearer at the gateway: **{dp:.2f}×** req/s (goal ≥ 0.7), "
          f"CPU {med['gw_dpop'][1] / med['gw_bearer'][1]:.2f}× per request", ""]
# The check's own cost, measured in the same run, bounds both ratios: each
# private_key_jwt request is a secret request plus at least one check (and its
# jti's write), each DPoP request a bearer request plus at least one check.
check = med["hello_verify"][1] - med["hello"][1]
ceiling = lambda k: med[k][1] / (med[k][1] + check)
lines += [f"Floors in the same run (crates/bench-hello): hello-world POST {med['hello'][1]:.1f} µs CPU "
          f"({med['hello'][0]:,.0f}/s); with one ES256 check on a parsed key {med['hello_verify'][1]:.1f} µs "
          f"({med['hello_verify'][0]:,.0f}/s): the check costs **{check:.1f} µs**.", "",
          f"- so per CPU second, private_key_jwt can serve at most **{ceiling('cc_secret'):.2f}×** what a "
          f"secret serves (were its `jti` write free), and DPoP at the gateway at most "
          f"**{ceiling('gw_bearer'):.2f}×** what bearer serves (goals ≥ 0.5 and ≥ 0.7 in req/s)", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
log "wrote $RESULTS"
