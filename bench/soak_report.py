#!/usr/bin/env python3
"""The Markdown report of bench/soak.sh, and its verdict (exit 1 when a goal is missed).

  soak_report.py PARTS_DIR OUT.md COMMIT MINUTES CONNECTIONS PROFILE NPROC LOADAVG

PARTS_DIR holds, per part run: sqlite.json / pg.json (the load generator's
output, crates/soak) with sqlite.rss.tsv / pg.rss.tsv (seconds, name=kB ...),
and diskfull.json (the disk-full checks).
"""

import json
import os
import sys

parts_dir, out, commit, minutes, conns, profile, nproc, load = sys.argv[1:9]
misses = []
lines = [f"# Soak (commit {commit})", "",
         f"`bench/soak.sh {minutes}`: {minutes} min per backend, {conns} connections, "
         f"{profile} build, {nproc} CPUs shared with the load generator (load average at the end: {load}).", ""]


def rss_table(name, path):
    rows = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        rows.append((int(f[0]), dict(kv.split("=") for kv in f[1:])))
    if not rows:
        return
    names = list(rows[0][1])
    # RSS is sampled every 5 s and shown per minute as floor (lowest sample)
    # and peak. The verdict uses the floor: each password check in flight
    # holds Argon2id's 19 MiB for ~30 ms, and mimalloc hands that back at
    # once, so a single sample swings by 20-40 MB with how many sign-ins
    # happen to be running. A leak raises the floor; a sign-in does not.
    minutes = {}
    for t, v in rows:
        minutes.setdefault(t // 60, []).append(v)
    # The last sample (taken as the load stops) belongs to the last minute.
    last = max(minutes)
    if last > 0 and len(minutes[last]) < 3:
        minutes[last - 1].extend(minutes.pop(last))
    def floor(m, n):
        return min(int(v[n]) for v in minutes[m])
    def peak(m, n):
        return max(int(v[n]) for v in minutes[m])
    lines.append(f"RSS (MB) each minute, {name}: floor / peak of the samples taken every 5 s:")
    lines.append("")
    lines.append("| minute | " + " | ".join(names) + " |")
    lines.append("|---:|" + "---:|" * len(names))
    for m in sorted(minutes):
        lines.append(f"| {m + 1} | " + " | ".join(
            f"{floor(m, n) / 1024:.1f} / {peak(m, n) / 1024:.1f}" for n in names) + " |")
    lines.append("")
    # Growth of the floor from minute 3 (the one starting at 120 s) to the
    # last minute, for runs long enough to have both. A restarted instance
    # (server_b) is shown, not judged.
    ms = sorted(minutes)
    if 2 in minutes and ms[-1] > 2:
        for n in names:
            if n == "server_b":
                continue
            a, b = floor(2, n), floor(ms[-1], n)
            g = (b - a) / a * 100 if a else 0
            lines.append(f"- {n}: floor {a / 1024:.1f} MB in minute 3 → {b / 1024:.1f} MB in minute {ms[-1] + 1}: {g:+.1f} %")
            if g >= 10:
                misses.append(f"{name}: {n} RSS floor grew {g:.1f} % after minute 2")
        lines.append("")
    else:
        lines.append("- (run too short to judge RSS growth after minute 2)")
        lines.append("")


def load_part(name, title):
    p = os.path.join(parts_dir, f"{name}.json")
    if not os.path.exists(p):
        return
    v = json.load(open(p))
    lines.append(f"## {title}")
    lines.append("")
    total = sum(k["requests"] for k in v["kinds"].values())
    errors = sum(k["errors"] for k in v["kinds"].values())
    lines.append(f"{total:,} requests in {v['duration_s']:.0f} s ({total / v['duration_s']:.0f}/s), "
                 f"**{errors} errors**.")
    lines.append("")
    lines.append("| kind | requests | ok | errors | wrong | 5xx | hangs | conn | 503 in fault | down in fault | p50 ms | p99 ms | max ms |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, s in v["kinds"].items():
        lines.append(f"| {k} | {s['requests']:,} | {s['ok']:,} | {s['errors']} | {s['wrong']} | {s['server_errors']} | "
                     f"{s['hangs']} | {s['conn_errors']} | {s['unavailable_in_fault']} | {s['down_in_fault']} | "
                     f"{s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {s['max_ms']:.0f} |")
        if s["errors"]:
            misses.append(f"{name}: {s['errors']} errors in {k}")
    lines.append("")
    e = v["ended"]
    lines.append(f"Ended tokens (revoked, family reuse, secret rotated, on-behalf changed) refused at the gateway: "
                 f"{e['count']}, after p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms, max {e['max_ms']} ms; "
                 f"later than 1 s: {e['over_1s']}.")
    lines.append("")
    if e["over_1s"]:
        misses.append(f"{name}: {e['over_1s']} ended tokens refused later than 1 s")
    if e["count"] == 0:
        misses.append(f"{name}: no ended token was checked")
    lines.append("Requests and errors per minute: " + ", ".join(f"{r}/{er}" for r, er in v["minutes"]) + ".")
    lines.append("")
    rss = os.path.join(parts_dir, f"{name}.rss.tsv")
    if os.path.exists(rss):
        rss_table(name, rss)
    if v["faults"]:
        lines.append("Faults:")
        lines.append("")
        lines.append("| fault | at s | lasted ms | recovery ms | 503 + Retry-After | other 5xx | lost connections (killed instance) | acknowledged writes checked | lost |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for f in v["faults"]:
            rec = f["recovery_ms"]
            lines.append(f"| {f['name']} | {f['started_s']:.0f} | {f['lasted_ms']} | {rec if rec is not None else 'never'} | "
                         f"{f['unavailable_503']} | {f['other_5xx']} | {f['down_conn']} | {f['ledger_checked']} | {f['ledger_lost']} |")
            if rec is None or rec > 5000:
                misses.append(f"{name}: no recovery within 5 s after {f['name']}")
            if f["ledger_lost"]:
                misses.append(f"{name}: {f['ledger_lost']} acknowledged writes lost over {f['name']}")
            if f["other_5xx"]:
                misses.append(f"{name}: {f['other_5xx']} 5xx other than 503 + Retry-After during {f['name']}")
            if f["name"].startswith("pg") and f["unavailable_503"] == 0:
                misses.append(f"{name}: no 503 + Retry-After seen while PostgreSQL was down")
        lines.append("")
    if v["samples"]:
        lines.append("First errors:")
        lines.append("")
        lines.extend(f"- `{s[:300]}`" for s in v["samples"][:20])
        lines.append("")


load_part("sqlite", "SQLite, one instance")

p = os.path.join(parts_dir, "diskfull.json")
if os.path.exists(p):
    d = json.load(open(p))
    lines.append("## SQLite, disk full (48 MB tmpfs filled)")
    lines.append("")
    st = d["statuses"]
    lines.append(f"- writes (a reference token each) until failing: {d['writes']}, first failure at #{d['first_failure_at']}; "
                 f"answers {', '.join(f'{k}: {v}' for k, v in sorted(st.items()))}; 503 without Retry-After: "
                 f"{d['missing_retry_after']}; over 5 s: {d['hangs']}")
    lines.append(f"- reads while full: {d['reads_while_full']}")
    rec = d["recovery_s"]
    lines.append(f"- space returned: writes back after {rec * 1000:.0f} ms" if rec is not None else "- space returned: writes did not come back in 30 s")
    lines.append(f"- reads after: {d['reads_after']}")
    lines.append(f"- `PRAGMA integrity_check`: {d.get('integrity_check')}")
    lines.append("")
    if d["first_failure_at"] is None:
        misses.append("diskfull: writes never failed on a full disk")
    bad = {k: v for k, v in st.items() if k not in ("200", "503")}
    if bad:
        misses.append(f"diskfull: writes answered {bad} (not 503)")
    if d["missing_retry_after"] or d["hangs"]:
        misses.append("diskfull: a 503 without Retry-After or a hang")
    if not all(d["reads_while_full"].values()) or not all(d["reads_after"].values()):
        misses.append("diskfull: a read failed")
    if rec is None or rec > 5:
        misses.append("diskfull: no recovery within 5 s")
    if d.get("integrity_check") != "ok":
        misses.append(f"diskfull: integrity_check {d.get('integrity_check')}")

load_part("pg", "PostgreSQL, two instances, with faults")

lines.append("## Verdict")
lines.append("")
lines += [f"- MISSED: {m}" for m in misses] or ["- every goal met"]
lines.append("")
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
sys.exit(1 if misses else 0)
