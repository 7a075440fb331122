#!/usr/bin/env python3
"""Helpers for bench/token.sh and bench/user-flows.sh.

  report.py run OUT -- CMD...        run CMD with stdout to OUT; its CPU time
                                     (user+sys, seconds) goes to OUT.cpu
  report.py check-token FILE ALG SCOPE
                                     a token response: a Bearer JWT signed with
                                     ALG that carries SCOPE
  report.py summarize CASES [opts]   the table, on stdout and as Markdown

CASES is tab-separated: name, result JSON file, server CPU ticks during the run,
load generator CPU file, and optionally the load average when the case started
and the busy ticks of the whole machine during it (/proc/stat), the server's RSS
after it (KiB) and the size of the SQLite WAL file after it (bytes). The result JSON
is oha's (--output-format json) or the same shape written by bench/wrk/flows.lua
or bench/flows.py; "okStatus" names the status that counts as success (200 by
default), "wrk" or "logins" hold details the notes mention.
"""

import argparse
import base64
import datetime
import json
import os
import platform
import resource
import subprocess
import sys


def cmd_run(argv):
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: report.py run OUT -- CMD...")
    out, cmd = argv[0], argv[2:]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "wb") as f:
        rc = subprocess.call(cmd, stdout=f)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(out + ".cpu", "w") as f:
        f.write(f"{cpu:.6f}\n")
    if rc != 0:
        sys.exit(f"load generator exited with {rc}")


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def cmd_check_token(argv):
    path, alg, scope = argv
    with open(path) as f:
        body = json.load(f)
    problems = []
    if body.get("token_type") != "Bearer":
        problems.append(f"token_type {body.get('token_type')!r}")
    parts = body.get("access_token", "").split(".")
    if len(parts) != 3:
        problems.append("access_token is not a JWS")
    else:
        header, claims = b64url_json(parts[0]), b64url_json(parts[1])
        if header.get("alg") != alg:
            problems.append(f"alg {header.get('alg')!r}, expected {alg!r}")
        if scope not in str(claims.get("scope", "")).split():
            problems.append(f"scope {claims.get('scope')!r}, expected {scope!r}")
    if problems:
        print(f"token for {alg}: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)


def dig(doc, *keys, default=None):
    for k in keys:
        if not isinstance(doc, dict) or k not in doc:
            return default
        doc = doc[k]
    return doc


def load_case(name, oha_path, ticks, cpu_path, clk_tck, loadavg=None, busy_ticks=None,
              rss_kb=None, wal_bytes=None):
    with open(oha_path) as f:
        doc = json.load(f)
    codes = {str(k): int(v) for k, v in (doc.get("statusCodeDistribution") or {}).items()}
    errors = {str(k): int(v) for k, v in (doc.get("errorDistribution") or {}).items()}
    ok_status = str(doc.get("okStatus", "200"))
    ok = codes.get(ok_status, 0)
    non200 = sum(v for k, v in codes.items() if k != ok_status)
    # Requests still in flight when the -z deadline hits are cut off by oha and
    # listed as errors; they are an artefact of the run's end, not failures.
    aborted = sum(v for k, v in errors.items() if "deadline" in k.lower())
    failed = sum(errors.values()) - aborted
    pct = doc.get("latencyPercentiles") or {}
    server_s = int(ticks) / clk_tck
    with open(cpu_path) as f:
        loadgen_s = float(f.read().strip() or 0)
    total_s = dig(doc, "summary", "total", default=0.0) or 0.0
    other_cores = None
    if busy_ticks not in (None, ""):
        other_s = int(busy_ticks) / clk_tck - server_s - loadgen_s
        other_cores = other_s / total_s if total_s else None
    return {
        "name": name,
        "rps": dig(doc, "summary", "requestsPerSec", default=0.0) or 0.0,
        "ok_rps": ok / total_s if total_s else 0.0,
        "p50": (pct.get("p50") or 0.0) * 1000,
        "p99": (pct.get("p99") or 0.0) * 1000,
        "ok": ok,
        "non200": non200,
        "codes": codes,
        "failed": failed,
        "aborted": aborted,
        "errors": errors,
        "server_us": server_s * 1e6 / ok if ok else float("nan"),
        "server_cores": server_s / total_s if total_s else 0.0,
        "loadgen_us": loadgen_s * 1e6 / ok if ok else float("nan"),
        "ok_status": ok_status,
        "mean_ms": (pct.get("mean") or 0.0) * 1000,
        "total_s": total_s,
        "loadavg": loadavg,
        "other_cores": other_cores,
        "rss_kb": int(rss_kb) if rss_kb else None,
        "wal_bytes": int(wal_bytes) if wal_bytes else None,
        "extra": doc.get("wrk") or doc.get("logins") or {},
    }


def table(cases, hello, ok_label="200s", loadgen="oha"):
    head = ["case", f"req/s ({ok_label})", "p50 ms", "p99 ms", "vs hello",
            "server CPU µs/req", "server cores", f"{loadgen} CPU µs/req", ok_label,
            "non-200" if ok_label == "200s" else "other status", "errors"]
    rows = []
    for c in cases:
        ratio = c["ok_rps"] / hello["ok_rps"] if hello and hello["ok_rps"] else float("nan")
        rows.append([
            c["name"],
            f"{c['ok_rps']:,.0f}",
            f"{c['p50']:.2f}",
            f"{c['p99']:.2f}",
            f"{ratio:.2f}" if not 0 < ratio < 0.1 else f"{ratio:.2g}",
            f"{c['server_us']:,.1f}",
            f"{c['server_cores']:.2f}",
            f"{c['loadgen_us']:,.1f}",
            f"{c['ok']:,}",
            f"{c['non200']:,}",
            f"{c['failed']:,}",
        ])
    return head, rows


def render_text(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(  # noqa: E731
        str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def render_md(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


USER_FLOWS_INTRO = (
    "`hello` is a hello-world `POST /connect/token` on the same stack (axum + tokio, "
    "`crates/bench-hello`), driven by the same wrk script as the next two rows. "
    "`refresh_token` is Gatehouse answering `grant_type=refresh_token` (HTTP Basic client "
    "authentication, ES256 access token, rotation: each answer's new refresh token is the "
    "family's next request, the old one is dead); `authorization_code` is exchanging codes "
    "minted beforehand, each once (the answer carries an access token and, with "
    "`offline_access`, a refresh token). `login cN` is `POST /login` with the right "
    "password, N sign-ins in flight at a time (consent is remembered, so a sign-in ends in "
    "a 303 to the redirect URI with a code: the row includes starting the session and "
    "issuing that code, which the `authorization_code`-minting GETs show to be cheap). "
    "req/s counts successful answers (200; 303 for logins); `vs hello` is that throughput "
    "over hello's; server CPU µs/req is the server process's utime+stime during the run "
    "over the successful answers; server cores is that CPU time over the run's wall time; "
    "load gen CPU is wrk's (Python's, for logins), which shares the same cores."
)


def flows_notes(cases, clk):
    notes = []
    for c in cases:
        x = c["extra"]
        mode = x.get("mode")
        if mode == "refresh":
            notes.append(
                f"{c['name']}: {x.get('loaded', 0):,} families, spread over the wrk threads; "
                f"{x.get('left', 0):,} still had a live refresh token in the pool at the end "
                f"(the rest were in flight when wrk stopped, or lost to a non-200). wrk neither "
                f"counts nor reuses what is in flight at the deadline, so the cut-off causes no "
                f"400: a 400 here would mean a family was lost (or, if a family were ever used "
                f"twice at once, revoked by reuse detection)"
                + (f"; {x['noToken']:,} answers of 200 without a refresh_token" if x.get("noToken") else "")
                + (f"; {x['starved']:,} requests found the pool empty and sent a placeholder"
                   if x.get("starved") else ""))
        elif mode == "code":
            used = x.get("loaded", 0) - x.get("left", 0)
            notes.append(
                f"{c['name']}: {x.get('loaded', 0):,} codes minted beforehand, {used:,} sent, "
                f"{x.get('left', 0):,} left unused"
                + (f"; **codes ran out**: {x['starved']:,} requests sent a placeholder "
                   f"(run again with more CODES)" if x.get("starved") else ""))
        if x.get("firstError"):
            notes.append(f"{c['name']}: first unexpected answer: `{x['firstError'][:300]}`")
    return notes


def cmd_summarize(argv):
    p = argparse.ArgumentParser(prog="report.py summarize")
    p.add_argument("cases")
    p.add_argument("--clk-tck", type=int, default=100)
    p.add_argument("--duration", default="?")
    p.add_argument("--connections", default="?")
    p.add_argument("--idle-rss-kb", type=int, default=0)
    p.add_argument("--peak-rss-kb", type=int, default=0)
    p.add_argument("--final-rss-kb", type=int, default=0)
    p.add_argument("--oha", default="oha", help="the load generator and its version")
    p.add_argument("--commit", default="unknown")
    p.add_argument("--loadavg", default="?")
    p.add_argument("--markdown")
    p.add_argument("--flavor", choices=["token", "user-flows"], default="token")
    p.add_argument("--argon2", default="?", help="user-flows: the stored hash's parameters")
    p.add_argument("--note", action="append", default=[], help="an extra note (repeatable)")
    a = p.parse_args(argv)

    cases = []
    with open(a.cases) as f:
        for line in f:
            if line.strip():
                fields = line.rstrip("\n").split("\t")
                name, oha_path, ticks, cpu_path = fields[:4]
                loadavg = fields[4] if len(fields) > 4 else None
                busy = fields[5] if len(fields) > 5 else None
                rss_kb = fields[6] if len(fields) > 6 else None
                wal = fields[7] if len(fields) > 7 else None
                cases.append(load_case(name, oha_path, ticks, cpu_path, a.clk_tck, loadavg, busy,
                                       rss_kb, wal))
    hello = next((c for c in cases if c["name"] == "hello"), None)
    flows = a.flavor == "user-flows"
    if flows:
        head, rows = table(cases, hello, ok_label="ok", loadgen="load gen")
    else:
        head, rows = table(cases, hello)

    mb = lambda kb: kb / 1024  # noqa: E731
    rss = (f"Gatehouse RSS: idle {mb(a.idle_rss_kb):.1f} MB (after setup, before load), "
           f"peak {mb(a.peak_rss_kb):.1f} MB (VmHWM), after the runs {mb(a.final_rss_kb):.1f} MB")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    per_case = "per load case" if flows else "per case"
    setup = (f"{a.connections} connections, {a.duration} {per_case}, {a.oha}; "
             f"{os.cpu_count()} CPUs ({cpu_model()}); load generator on the same machine; "
             f"load average before the runs {a.loadavg}; "
             f"commit {a.commit}; {when}")
    notes = []
    for c in cases:
        if c["non200"]:
            notes.append(f"{c['name']}: status codes {c['codes']}")
        if c["failed"]:
            notes.append(f"{c['name']}: errors {c['errors']}")
    aborted = {c["name"]: c["aborted"] for c in cases if c["aborted"]}
    if aborted:
        notes.append("requests cut off at the deadline (not counted as errors): "
                     + ", ".join(f"{k} {v}" for k, v in aborted.items()))
    logins = []
    machine_head, machine_rows = None, []
    if flows:
        notes = flows_notes(cases, a.clk_tck) + notes
        for c in cases:
            if c["ok_status"] == "303" and c["ok"]:
                x = c["extra"]
                logins.append(
                    f"{c['name']}: {x.get('n', c['ok'])} sign-ins, {x.get('concurrency', '?')} at a "
                    f"time: {c['ok_rps']:.1f} logins/s, {c['mean_ms']:.1f} ms per login "
                    f"(mean latency; p50 {c['p50']:.1f}, p99 {c['p99']:.1f}), server CPU "
                    f"{c['server_us'] / 1000:.1f} ms per login ({c['server_cores']:.2f} cores busy)")
        machine_head = ["case", "load average at start", "other processes' CPU (cores)",
                        "server RSS after, MB", "SQLite WAL file after, MB"]
        for c in cases:
            oc = c["other_cores"]
            machine_rows.append([
                c["name"], c["loadavg"] or "?",
                "?" if oc is None else f"{max(oc, 0.0):.2f}",
                "–" if c["rss_kb"] is None else f"{c['rss_kb'] / 1024:.1f}",
                "–" if c["wal_bytes"] is None else f"{c['wal_bytes'] / 2**20:.1f}",
            ])
    notes += a.note

    print()
    print(render_text(head, rows))
    print()
    if flows:
        print(f"Passwords: {a.argon2} (parameters read from the stored hash)")
        for line in logins:
            print(line)
        print()
        print(render_text(machine_head, machine_rows))
        print()
    print(rss)
    for n in notes:
        print("note: " + n)
    print(setup)

    if a.markdown:
        if flows:
            md = [
                "# User flows benchmark: refresh, code exchange, login",
                "",
                "Produced by `bench/user-flows.sh` (do not edit by hand; run it again).",
                "",
                f"Setup: {setup}.",
                "",
                USER_FLOWS_INTRO,
                "",
                render_md(head, rows),
                "",
                f"Login cost, passwords hashed with {a.argon2} "
                "(Argon2id, m = memory in KiB, t = passes, p = lanes; read from the stored hash):",
                "",
            ]
            md += [f"- {line}" for line in logins]
            md += [
                "",
                "The machine during each case (other processes' CPU is the whole machine's "
                "busy time from /proc/stat minus the server's and the load generator's, over "
                "the case's wall time; anything well above 0 means someone else's work, a "
                "compile or tests, shared the cores and the figures above are low), and "
                "Gatehouse's memory and SQLite write-ahead log (`gh.db-wal`) after it "
                "(the hello row shows the hello server's own RSS):",
                "",
                render_md(machine_head, machine_rows),
                "",
                rss + ".",
            ]
        else:
            md = [
                "# Token endpoint benchmark",
                "",
                "Produced by `bench/token.sh` (do not edit by hand; run it again).",
                "",
                f"Setup: {setup}.",
                "",
                "`hello` is a hello-world `POST /connect/token` on the same stack (axum + tokio, "
                "`crates/bench-hello`); each algorithm row is Gatehouse issuing a client credentials "
                "token (HTTP Basic client authentication, JWT signed with that algorithm). "
                "req/s counts 200 answers only; `vs hello` is that throughput over hello's; "
                "server CPU µs/req is the server process's utime+stime during the run over the "
                "number of 200 answers; server cores is that CPU time over the run's wall time; "
                "oha CPU is the load generator's, which shares the same cores.",
                "",
                render_md(head, rows),
                "",
                rss + ".",
            ]
        if notes:
            md.append("")
            md += [f"- {n}" for n in notes]
        md.append("")
        with open(a.markdown, "w") as f:
            f.write("\n".join(md))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, argv = sys.argv[1], sys.argv[2:]
    if cmd == "run":
        cmd_run(argv)
    elif cmd == "check-token":
        cmd_check_token(argv)
    elif cmd == "summarize":
        cmd_summarize(argv)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
