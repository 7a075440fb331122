#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each and prints, per
# target, the executions and whether it crashed. Exits non-zero on any crash.
#
#   fuzz/run.sh SECONDS [TARGET ...]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# Each run starts from a temporary copy of the checked-in seeds (fuzz/corpus/T),
# so what it generates never lands in the repository; a crashing input is kept
# in fuzz/artifacts/T/ (reproduce: cargo +nightly fuzz run -s none -a T FILE).
#
# Targets run FUZZ_JOBS at a time (default: the number of cores).
#
# Built with debug assertions and overflow checks (-a) and without a sanitizer:
# the workspace forbids unsafe code, so AddressSanitizer would find nothing the
# Rust checks do not, at half the speed. FUZZ_SANITIZER=address turns it on.
# All targets are built by one cargo invocation, with 16 codegen units instead
# of cargo-fuzz's 1: on a 2-core machine that roughly halves the build from
# empty for a few per cent fewer executions per second.
set -uo pipefail

secs=${1:?usage: fuzz/run.sh SECONDS [TARGET ...]}
shift
cd "$(dirname "$0")"
san=${FUZZ_SANITIZER:-none}
flags=(+nightly fuzz)
opts=(-s "$san" -a --codegen-units 16)
# FUZZ_TARGET_DIR keeps the instrumented build outside the checkout (.ci/fuzz
# points it at a cache that outlives a clean clone: the build is most of the cost).
[ -n "${FUZZ_TARGET_DIR:-}" ] && opts+=(--target-dir "$FUZZ_TARGET_DIR")

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo "${flags[@]}" list); fi

cargo "${flags[@]}" build "${opts[@]}" >&2 || {
	echo "fuzz build failed" >&2
	exit 2
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run_one T: fuzzes T for SECONDS; writes its result line to $work/T.result and
# exits non-zero on a crash.
run_one() {
	local t=$1 rc execs rate result
	mkdir -p "$work/$t" "artifacts/$t"
	cp corpus/"$t"/* "$work/$t/" 2>/dev/null
	cargo "${flags[@]}" run "${opts[@]}" "$t" "$work/$t" -- \
		-max_total_time="$secs" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="artifacts/$t/" >"$work/$t.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		result=ok
	else
		result="CRASH (exit $rc; see fuzz/artifacts/$t/)"
		grep -m1 -A12 -E "panicked at|ERROR: libFuzzer|==ERROR" "$work/$t.log" >&2
	fi
	printf '%-20s %14s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result" >"$work/$t.result"
	[ "$rc" -eq 0 ]
}

# Each libFuzzer process uses one core: FUZZ_JOBS targets at a time (default:
# one per core), so the guard takes SECONDS x targets / cores, not x targets.
jobs=${FUZZ_JOBS:-$(nproc)}
failed=0
running=0
for t in "${targets[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n || failed=1
		running=$((running - 1))
	fi
	run_one "$t" &
	running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
	wait -n || failed=1
	running=$((running - 1))
done
printf '%-20s %14s %8s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do cat "$work/$t.result"; done
exit "$failed"
