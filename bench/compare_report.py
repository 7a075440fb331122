#!/usr/bin/env python3
"""The table of bench/compare.sh (standard library only).

  compare_report.py RUNS IRS --out FILE [--alg ES256 --duration 10s ...]

RUNS: one wrk run a line, tab-separated: round, server (hello, base, new,
pg_base, pg_new), case, server CPU µs per 200 answer, 200 answers per second,
requests that found their pool of codes or refresh tokens empty, and (PostgreSQL)
database round trips per 200 answer. IRS: server, case, callgrind instructions
per request. Medians over the rounds; the ratios are of medians.
"""

import argparse
import math
import statistics
import sys

CASES = [
    # (case, server suffix, label)
    ("cc", "", "client_credentials {alg}"),
    ("introspect_ref", "", "introspection, reference token"),
    ("introspect_jwt", "", "introspection, JWT ({alg})"),
    ("code", "", "authorization_code, SQLite"),
    ("refresh", "", "refresh_token, SQLite"),
    ("refresh", "pg_", "refresh_token, PostgreSQL"),
]

# Issue 11's goals, for the lines under the table: (case, prefix, test, text).
GOALS = [
    ("cc", "", lambda r: r["cpu_hello"] <= 3, "client_credentials CPU ≤ 3× hello"),
    ("introspect_ref", "", lambda r: r["cpu_hello"] <= 3, "reference-token introspection CPU ≤ 3× hello"),
    ("introspect_ref", "", lambda r: r["rps_hello"] >= 0.3, "reference-token introspections/s ≥ 0.3× hello/s"),
    ("introspect_jwt", "", lambda r: r["cpu_hello"] <= 3, "JWT introspection CPU ≤ 3× hello"),
    ("introspect_jwt", "", lambda r: r["rps_hello"] >= 0.3, "JWT introspections/s ≥ 0.3× hello/s"),
    ("code", "", lambda r: r["rps"] >= 3000, "authorization_code on SQLite ≥ 3,000/s"),
    ("refresh", "", lambda r: r["rps"] >= 3000, "refresh_token on SQLite ≥ 3,000/s"),
    ("refresh", "pg_", lambda r: r["rt"] <= 2, "refresh_token on PostgreSQL ≤ 2 round trips"),
    ("refresh", "pg_", lambda r: r["rps_base"] >= 2, "refresh_token on PostgreSQL ≥ 2× base's throughput"),
]


def median(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else math.nan


def fnum(x, spec):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def floors(fig, irs, h_cpu, h_rps, alg, results):
    """The same stack's floors, measured in the same run: hello, and hello with
    one signature per request, which no client_credentials answer can beat."""
    s_cpu, s_rps, _ = fig("hello", "sign_floor")
    h_ir, s_ir = irs.get(("hello", "hello")), irs.get(("hello", "sign_floor"))
    if math.isnan(s_cpu) and h_ir is None:
        return []
    ratio = (lambda x, y: x / y if x is not None and y else None)
    md = ["", "Floors, same stack and same run (crates/bench-hello):", "",
          "| floor | req/s | CPU µs | CPU ÷ hello | instr. | instr. ÷ hello |",
          "|---|---:|---:|---:|---:|---:|",
          f"| hello-world POST | {fnum(h_rps, ',.0f')} | {fnum(h_cpu, '.1f')} | 1.00 | "
          f"{fnum(h_ir, ',.0f')} | 1.00 |",
          f"| hello + one {alg} signature | {fnum(s_rps, ',.0f')} | {fnum(s_cpu, '.1f')} | "
          f"{fnum(s_cpu / h_cpu, '.2f')} | {fnum(s_ir, ',.0f')} | {fnum(ratio(s_ir, h_ir), '.2f')} |"]
    cc = results.get(("cc", ""))
    n_ir = irs.get(("new", "cc"))
    if cc is not None and not math.isnan(s_cpu):
        md += ["", f"client_credentials ({alg}) costs {cc['cpu_hello']:.2f}× hello's CPU, of which the "
               f"signature floor is {s_cpu / h_cpu:.2f}×: Gatehouse's own work above the floor is "
               f"{cc['cpu_hello'] - s_cpu / h_cpu:.2f}× hello"
               + (f" ({(n_ir - s_ir) / h_ir:.2f}× hello's instructions)." if n_ir and s_ir and h_ir else ".")]
    return md


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs")
    p.add_argument("irs")
    p.add_argument("--out", required=True)
    p.add_argument("--alg", default="ES256")
    p.add_argument("--duration", default="?")
    p.add_argument("--rounds", default="?")
    p.add_argument("--callgrind-n", default="?")
    p.add_argument("--loadavg", default="?")
    p.add_argument("--base", default="base")
    p.add_argument("--new", default="new")
    p.add_argument("--families", default="?")
    p.add_argument("--codes", default="?")
    a = p.parse_args()

    runs = {}
    starved = {}
    for line in open(a.runs):
        f = line.rstrip("\n").split("\t")
        if len(f) < 6:
            continue
        _, srv, case, cpu, rps, hungry = f[:6]
        rt = float(f[6]) if len(f) > 6 and f[6] else math.nan
        runs.setdefault((srv, case), []).append((float(cpu), float(rps), rt))
        starved[(srv, case)] = starved.get((srv, case), 0) + int(hungry or 0)
    irs = {}
    try:
        for line in open(a.irs):
            srv, case, ir = line.rstrip("\n").split("\t")
            irs[(srv, case)] = float(ir)
    except FileNotFoundError:
        pass

    def fig(srv, case):
        xs = runs.get((srv, case), [])
        return (median([x[0] for x in xs]), median([x[1] for x in xs]), median([x[2] for x in xs]))

    h_cpu, h_rps, _ = fig("hello", "hello")
    rows, results = [], {}
    for case, prefix, label in CASES:
        b_cpu, b_rps, b_rt = fig(prefix + "base", case)
        n_cpu, n_rps, n_rt = fig(prefix + "new", case)
        if math.isnan(b_cpu) and math.isnan(n_cpu):
            continue
        r = {
            "cpu_hello": n_cpu / h_cpu, "rps_hello": n_rps / h_rps, "rps": n_rps,
            "rt": n_rt, "rps_base": n_rps / b_rps if b_rps else math.nan,
        }
        results[(case, prefix)] = r
        rows.append([
            label.format(alg=a.alg),
            fnum(b_rps, ",.0f"), fnum(n_rps, ",.0f"), fnum(n_rps / b_rps, ".2f"),
            fnum(b_cpu, ".1f"), fnum(n_cpu, ".1f"),
            fnum(b_cpu / h_cpu, ".2f"), fnum(n_cpu / h_cpu, ".2f"), fnum(n_cpu / b_cpu, ".3f"),
            fnum(n_rps / h_rps, ".2f"),
            fnum(irs.get(("base", case)) if not prefix else None, ",.0f"),
            fnum(irs.get(("new", case)) if not prefix else None, ",.0f"),
            fnum(b_rt, ".1f"), fnum(n_rt, ".1f"),
        ])

    head = ["case", "req/s base", "req/s new", "new/base req/s", "CPU µs base", "CPU µs new",
            "CPU÷hello base", "CPU÷hello new", "new/base CPU", "new req/s ÷ hello req/s",
            "instr. base", "instr. new", "DB round trips base", "DB round trips new"]
    md = [f"# Issue 11's speed figures: {a.new} against {a.base}", "",
          f"wrk -t2 -c64, {a.duration} per run, median of {a.rounds} rounds alternating base and new; "
          f"server CPU (utime+stime) per 200 answer; callgrind over {a.callgrind_n} sequential "
          f"requests after 200 warm-up ones (instructions per request). Hello-world POST "
          f"(crates/bench-hello, same axum stack): {h_rps:,.0f} req/s, {h_cpu:.1f} µs CPU per request. "
          f"Refresh runs: {a.families} families per run; code runs: {a.codes} codes minted per run. "
          f"Database round trips: TCP data segments the server sent to PostgreSQL per refresh, net of "
          f"the change feed's idle polling. Load average before: {a.loadavg}.", "",
          "| " + " | ".join(head) + " |",
          "|---|" + "---:|" * (len(head) - 1)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    md += floors(fig, irs, h_cpu, h_rps, a.alg, results)
    md += ["", "Goals (issue 11), this commit:", ""]
    for case, prefix, test, text in GOALS:
        r = results.get((case, prefix))
        if r is None:
            continue
        md.append(f"- {text}: {'met' if test(r) else '**not met**'}")
    hungry = {k: v for k, v in starved.items() if v}
    if hungry:
        md += ["", "Requests that found their pool empty (the figure is a floor): "
               + ", ".join(f"{s} {c}: {v:,}" for (s, c), v in sorted(hungry.items()))]
    text = "\n".join(md) + "\n"
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
