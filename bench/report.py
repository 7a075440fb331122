#!/usr/bin/env python3
"""Helpers for bench/token.sh.

  report.py run OUT -- CMD...        run CMD with stdout to OUT; its CPU time
                                     (user+sys, seconds) goes to OUT.cpu
  report.py check-token FILE ALG SCOPE
                                     a token response: a Bearer JWT signed with
                                     ALG that carries SCOPE
  report.py summarize CASES [opts]   the table, on stdout and as Markdown

CASES is tab-separated: name, oha JSON file, server CPU ticks during the run,
load generator CPU file.
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


def load_case(name, oha_path, ticks, cpu_path, clk_tck):
    with open(oha_path) as f:
        doc = json.load(f)
    codes = {str(k): int(v) for k, v in (doc.get("statusCodeDistribution") or {}).items()}
    errors = {str(k): int(v) for k, v in (doc.get("errorDistribution") or {}).items()}
    ok = codes.get("200", 0)
    non200 = sum(v for k, v in codes.items() if k != "200")
    # Requests still in flight when the -z deadline hits are cut off by oha and
    # listed as errors; they are an artefact of the run's end, not failures.
    aborted = sum(v for k, v in errors.items() if "deadline" in k.lower())
    failed = sum(errors.values()) - aborted
    pct = doc.get("latencyPercentiles") or {}
    server_s = int(ticks) / clk_tck
    with open(cpu_path) as f:
        loadgen_s = float(f.read().strip() or 0)
    total_s = dig(doc, "summary", "total", default=0.0) or 0.0
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
    }


def table(cases, hello):
    head = ["case", "req/s (200s)", "p50 ms", "p99 ms", "vs hello",
            "server CPU µs/req", "server cores", "oha CPU µs/req", "200s", "non-200", "errors"]
    rows = []
    for c in cases:
        ratio = c["ok_rps"] / hello["ok_rps"] if hello and hello["ok_rps"] else float("nan")
        rows.append([
            c["name"],
            f"{c['ok_rps']:,.0f}",
            f"{c['p50']:.2f}",
            f"{c['p99']:.2f}",
            f"{ratio:.2f}",
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


def cmd_summarize(argv):
    p = argparse.ArgumentParser(prog="report.py summarize")
    p.add_argument("cases")
    p.add_argument("--clk-tck", type=int, default=100)
    p.add_argument("--duration", default="?")
    p.add_argument("--connections", default="?")
    p.add_argument("--idle-rss-kb", type=int, default=0)
    p.add_argument("--peak-rss-kb", type=int, default=0)
    p.add_argument("--final-rss-kb", type=int, default=0)
    p.add_argument("--oha", default="oha")
    p.add_argument("--commit", default="unknown")
    p.add_argument("--loadavg", default="?")
    p.add_argument("--markdown")
    a = p.parse_args(argv)

    cases = []
    with open(a.cases) as f:
        for line in f:
            if line.strip():
                name, oha_path, ticks, cpu_path = line.rstrip("\n").split("\t")
                cases.append(load_case(name, oha_path, ticks, cpu_path, a.clk_tck))
    hello = next((c for c in cases if c["name"] == "hello"), None)
    head, rows = table(cases, hello)

    mb = lambda kb: kb / 1024  # noqa: E731
    rss = (f"Gatehouse RSS: idle {mb(a.idle_rss_kb):.1f} MB (after setup, before load), "
           f"peak {mb(a.peak_rss_kb):.1f} MB (VmHWM), after the runs {mb(a.final_rss_kb):.1f} MB")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    setup = (f"{a.connections} connections, {a.duration} per case, {a.oha}; "
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

    print()
    print(render_text(head, rows))
    print()
    print(rss)
    for n in notes:
        print("note: " + n)
    print(setup)

    if a.markdown:
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
