#!/usr/bin/env python3
"""Helpers for bench/pg.sh (standard library only; PostgreSQL through psql).

  pg_report.py run STDOUT CPUFILE -- CMD...
      run CMD with its stdout to STDOUT; its CPU time (user+sys, seconds) goes
      to CPUFILE. A non-zero exit is an error.
  pg_report.py check-token FILE ALG SCOPE
      a token response: a Bearer JWT signed with ALG that carries SCOPE
  pg_report.py snap OUT --pids P1,P2 [--db-url postgres://.../DB]
      a snapshot, as JSON, of what the report needs at one moment:
        - CPU ticks, RSS and peak RSS of the given Gatehouse processes,
        - the busy ticks of the whole machine (/proc/stat),
        - with --db-url: pg_stat_database (xact_commit, xact_rollback, tup_*)
          of that database, pg_stat_user_tables, and the CPU ticks of the
          PostgreSQL processes that work for it (its backends, and the
          cluster's background processes: WAL writer, checkpointer, ...);
          the TCP connections from the given processes to PostgreSQL
          (ss -tinp) with their data segments sent and received.
  pg_report.py summarize CASES [--markdown FILE] [options]
      the tables, on stdout and as Markdown.

CASES is tab-separated, one case a line: name, kind (hello, client_credentials,
refresh_token), backend (hello, SQLite, PostgreSQL), instances, load (e.g.
"oha 1×64"), the hello case to compare with, the load generators' result files
(comma-separated; each is oha's JSON or bench/wrk/flows.lua's, with FILE.cpu
next to it), and the snapshot directory (idle0.json, start.json, end.json and,
for PostgreSQL, settled.json).

How the database figures are derived (PostgreSQL rows):
  - idle rates: idle0 -> start, a few seconds with no load, after the setup's
    statistics have settled: transactions, round trips and CPU per second, the
    change-feed polling of every instance.
  - transactions per request: pg_stat_database xact_commit + xact_rollback,
    start -> settled (PostgreSQL publishes a backend's counters up to 1 s late
    while busy and up to 10 s late once idle, so "settled" is read after
    waiting), minus the idle rate times that interval, over the 200 answers.
    Every statement sqlx runs outside BEGIN is a transaction of its own; a
    BEGIN ... COMMIT block is one however many statements it holds.
  - round trips per request: TCP data segments the Gatehouse processes sent to
    PostgreSQL (ss: data_segs_out), start -> end, minus the idle rate, over the
    200 answers. Each round trip (a statement, BEGIN, COMMIT, the liveness ping
    sqlx 0.9's pool sends when a connection is released, and when one is taken
    from the idle queue) is one write on loopback and so one segment.
  - per-table figures: pg_stat_user_tables (seq_scan + idx_scan, n_tup_ins,
    n_tup_upd, n_tup_del), start -> settled, minus idle, per 200 answer.
"""

import argparse
import base64
import datetime
import json
import math
import os
import platform
import resource
import signal
import socket
import struct
import subprocess
import sys
import time


# ------------------------------------------------------------------ run
def cmd_run(argv):
    if len(argv) < 4 or argv[2] != "--":
        sys.exit("usage: pg_report.py run STDOUT CPUFILE -- CMD...")
    out, cpu_file, cmd = argv[0], argv[1], argv[3:]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "wb") as f:
        rc = subprocess.call(cmd, stdout=f)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(cpu_file, "w") as f:
        f.write(f"{cpu:.6f}\n")
    if rc != 0:
        sys.exit(f"load generator exited with {rc}: {' '.join(cmd[:3])} ...")


# ------------------------------------------------------------------ check-token
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
        print("token: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)


# ------------------------------------------------------------------ snap
def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        # fields 14 and 15 (utime, stime); rest starts at field 3
        return int(rest[11]) + int(rest[12])
    except (OSError, IndexError, ValueError):
        return None


def proc_status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def machine_busy_ticks():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                v = [int(x) for x in line.split()[1:]]
                # user nice system idle iowait irq softirq steal
                return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return 0


SNAP_SQL = """
SELECT json_build_object(
  'db', (SELECT json_build_object(
           'xact_commit', xact_commit, 'xact_rollback', xact_rollback,
           'tup_returned', tup_returned, 'tup_fetched', tup_fetched,
           'tup_inserted', tup_inserted, 'tup_updated', tup_updated,
           'tup_deleted', tup_deleted, 'blks_hit', blks_hit, 'blks_read', blks_read,
           'active_time', active_time, 'idle_in_transaction_time', idle_in_transaction_time)
         FROM pg_stat_database WHERE datname = current_database()),
  'tables', (SELECT json_object_agg(relname, json_build_object(
           'scans', coalesce(seq_scan, 0) + coalesce(idx_scan, 0),
           'ins', n_tup_ins, 'upd', n_tup_upd, 'del', n_tup_del))
         FROM pg_stat_user_tables),
  'pg_pids', (SELECT json_agg(pid) FROM pg_stat_activity
         WHERE pid <> pg_backend_pid()
           AND (datname = current_database() OR datname IS NULL)),
  'ssl', (SELECT json_build_object('on', count(*) FILTER (WHERE s.ssl), 'all', count(*),
                                   'version', max(s.version))
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
         WHERE a.datname = current_database() AND a.backend_type = 'client backend'
           AND a.pid <> pg_backend_pid()),
  'states', (SELECT json_object_agg(coalesce(state, '?'), n) FROM (
           SELECT state, count(*) AS n FROM pg_stat_activity
           WHERE datname = current_database() AND backend_type = 'client backend'
             AND pid <> pg_backend_pid() GROUP BY state) x),
  'idle_in_tx_max_s', (SELECT max(extract(epoch FROM now() - xact_start))
         FROM pg_stat_activity
         WHERE datname = current_database() AND state LIKE 'idle in transaction%')
)
"""


def pg_snapshot(url):
    t0 = time.monotonic()
    out = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", url, "-c", SNAP_SQL],
                         check=True, capture_output=True, text=True).stdout
    t1 = time.monotonic()
    doc = json.loads(out)
    doc["t_db"] = (t0 + t1) / 2
    pids = doc.pop("pg_pids") or []
    doc["pg_ticks"] = {str(p): t for p in pids if (t := proc_ticks(p)) is not None}
    return doc


def _diag_dump(family, dport):
    """{inode: (data_segs_out, data_segs_in)} of the established TCP sockets whose
    peer port is dport, from the kernel's sock_diag netlink interface (what ss
    reads; no process is forked, so sampling often is cheap)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)  # NETLINK_SOCK_DIAG
    try:
        # inet_diag_req_v2: family, protocol, ext (1 << INET_DIAG_INFO - 1), pad,
        # states (1 << TCP_ESTABLISHED), then an empty inet_diag_sockid.
        req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 1 << 1, 0, 1 << 1) + b"\0" * 48
        # nlmsghdr: SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP
        s.sendto(struct.pack("=IHHII", 16 + len(req), 20, 0x301, 1, 0) + req, (0, 0))
        out = {}
        while True:
            data = s.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                ln, typ = struct.unpack_from("=IH", data, off)
                if typ == 3:  # NLMSG_DONE
                    return out
                if typ == 2:  # NLMSG_ERROR
                    raise OSError("sock_diag: netlink error")
                body = off + 16
                # inet_diag_msg: 4 bytes, sockid (sport, dport, ...), ..., inode at 68
                dp = struct.unpack_from("!H", data, body + 6)[0]
                inode = struct.unpack_from("=I", data, body + 68)[0]
                a = body + 72
                while dp == dport and a + 4 <= off + ln:
                    alen, atyp = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if atyp == 2 and alen - 4 >= 160:  # INET_DIAG_INFO: struct tcp_info
                        # tcpi_data_segs_in at 152, tcpi_data_segs_out at 156
                        seg_in, seg_out = struct.unpack_from("=II", data, a + 4 + 152)
                        out[inode] = (seg_out, seg_in)
                    a += (alen + 3) & ~3
                off += (ln + 3) & ~3
            if not data:
                return out
    finally:
        s.close()


def socket_inodes(pid):
    found = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                found.add(int(link[8:-1]))
    except OSError:
        pass
    return found


def pg_sockets(pids, port):
    """{ "pid:inode": {"out": data_segs_out, "in": data_segs_in} } of the TCP
    connections from pids to PostgreSQL's port."""
    diag = {}
    for fam in (socket.AF_INET, socket.AF_INET6):
        diag.update(_diag_dump(fam, port))
    socks = {}
    for pid in pids:
        for ino in socket_inodes(pid) & diag.keys():
            o, i = diag[ino]
            socks[f"{pid}:{ino}"] = {"out": o, "in": i}
    return socks


def cmd_watch(argv):
    """Samples pg_sockets until SIGTERM, then writes each socket's first and last
    counts: a connection closed before the final snapshot (a request cancelled
    when the load generator hangs up mid-query makes sqlx close its connection)
    keeps what it sent up to the last sample."""
    p = argparse.ArgumentParser(prog="pg_report.py watch")
    p.add_argument("out")
    p.add_argument("--pids", default="")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--interval", type=float, default=0.1)
    a = p.parse_args(argv)
    pids = [int(x) for x in a.pids.split(",") if x]
    seen = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    samples = 0
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    while not stop:
        for k, v in pg_sockets(pids, a.pg_port).items():
            if k in seen:
                seen[k]["last"] = v
            else:
                seen[k] = {"first": v, "last": v}
        samples += 1
        time.sleep(a.interval)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    with open(a.out, "w") as f:
        json.dump({"sockets": seen, "samples": samples,
                   "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)}, f)


def cmd_snap(argv):
    p = argparse.ArgumentParser(prog="pg_report.py snap")
    p.add_argument("out")
    p.add_argument("--pids", default="")
    p.add_argument("--db-url")
    p.add_argument("--pg-port", type=int, default=5432)
    a = p.parse_args(argv)
    pids = [int(x) for x in a.pids.split(",") if x]
    doc = {
        "t": time.monotonic(),
        "ticks": {str(p): proc_ticks(p) for p in pids},
        "busy": machine_busy_ticks(),
        "rss_kb": {str(p): proc_status_kb(p, "VmRSS") for p in pids},
        "hwm_kb": {str(p): proc_status_kb(p, "VmHWM") for p in pids},
    }
    if a.db_url:
        doc["sockets"] = pg_sockets(set(pids), a.pg_port)
        doc["t_sockets"] = time.monotonic()
        doc.update(pg_snapshot(a.db_url))
    with open(a.out, "w") as f:
        json.dump(doc, f)


# ------------------------------------------------------------------ summarize
def load_json(path):
    with open(path) as f:
        return json.load(f)


def dig(doc, *keys, default=None):
    for k in keys:
        if not isinstance(doc, dict) or k not in doc:
            return default
        doc = doc[k]
    return doc


def ticks_delta(a, b):
    """Sum over processes of b - a (a process new in b counts from 0)."""
    return sum((tb or 0) - (a.get(p) or 0) for p, tb in b.items() if tb is not None)


def segs_delta(a, b, watch=None):
    """Data segments sent ("out") and received ("in") on the sockets between
    snapshots a and b; with the watcher's samples, a socket closed before b
    counts up to its last sample. Also the sockets opened and closed."""
    socks = dict(b)
    for k, v in ((watch or {}).get("sockets") or {}).items():
        last = v["last"]
        if k not in socks or socks[k]["out"] < last["out"]:
            socks[k] = last
    out = sum(v["out"] - a.get(k, {}).get("out", 0) for k, v in socks.items())
    inn = sum(v["in"] - a.get(k, {}).get("in", 0) for k, v in socks.items())
    opened = [k for k in socks if k not in a]
    closed = [k for k in socks if k not in b] + [k for k in a if k not in socks]
    return out, inn, opened, closed


def load_case(fields, clk):
    name, kind, backend, instances, load, hello_ref, outs, snapdir = fields[:8]
    gens = []
    for path in outs.split(","):
        doc = load_json(path)
        with open(path + ".cpu") as f:
            cpu = float(f.read().strip() or 0)
        codes = {str(k): int(v) for k, v in (doc.get("statusCodeDistribution") or {}).items()}
        errors = {str(k): int(v) for k, v in (doc.get("errorDistribution") or {}).items()}
        pct = doc.get("latencyPercentiles") or {}
        gens.append({
            "total": dig(doc, "summary", "total", default=0.0) or 0.0,
            "codes": codes, "errors": errors, "cpu": cpu,
            "p50": (pct.get("p50") or 0.0) * 1000, "p99": (pct.get("p99") or 0.0) * 1000,
            "wrk": doc.get("wrk") or {},
        })
    codes, errors = {}, {}
    for g in gens:
        for k, v in g["codes"].items():
            codes[k] = codes.get(k, 0) + v
        for k, v in g["errors"].items():
            errors[k] = errors.get(k, 0) + v
    ok = codes.get("200", 0)
    aborted = sum(v for k, v in errors.items() if "deadline" in k.lower())
    wall = sum(g["total"] for g in gens) / len(gens)
    s0 = load_json(os.path.join(snapdir, "start.json"))
    s1 = load_json(os.path.join(snapdir, "end.json"))
    wall_snap = s1["t"] - s0["t"]
    server_s = ticks_delta(s0["ticks"], s1["ticks"]) / clk
    loadgen_s = sum(g["cpu"] for g in gens)
    busy_s = (s1["busy"] - s0["busy"]) / clk
    c = {
        "name": name, "kind": kind, "backend": backend, "instances": int(instances),
        "load": load, "hello_ref": hello_ref,
        "ok": ok, "codes": codes, "errors": errors, "aborted": aborted,
        "failed": sum(errors.values()) - aborted,
        "non200": sum(v for k, v in codes.items() if k != "200"),
        # Each generator's 200s over its own run time, summed.
        "ok_rps": sum(g["codes"].get("200", 0) / g["total"] for g in gens if g["total"]),
        "p50": max(g["p50"] for g in gens), "p99": max(g["p99"] for g in gens),
        "p50s": [g["p50"] for g in gens], "p99s": [g["p99"] for g in gens],
        "wall": wall,
        "server_us": server_s * 1e6 / ok if ok else math.nan,
        "server_cores": server_s / wall_snap if wall_snap else math.nan,
        "loadgen_us": loadgen_s * 1e6 / ok if ok else math.nan,
        "rss_mb": sum(v or 0 for v in s1["rss_kb"].values()) / 1024,
        "hwm_mb": sum(v or 0 for v in s1["hwm_kb"].values()) / 1024,
        "wrk": [g["wrk"] for g in gens if g["wrk"]],
        "pg": None,
    }
    pg_s = 0.0
    idle_path = os.path.join(snapdir, "idle0.json")
    settled_path = os.path.join(snapdir, "settled.json")
    if os.path.exists(idle_path) and os.path.exists(settled_path):
        i0 = load_json(idle_path)
        s2 = load_json(settled_path)
        idle_t = s0["t_db"] - i0["t_db"]

        def xacts(s):
            return s["db"]["xact_commit"] + s["db"]["xact_rollback"]

        idle_x = (xacts(s0) - xacts(i0)) / idle_t
        seg_idle_t = s0["t_sockets"] - i0["t_sockets"]
        idle_segs, idle_in, _, idle_closed = segs_delta(i0["sockets"], s0["sockets"])
        idle_seg_rate = idle_segs / seg_idle_t
        idle_gh_s = ticks_delta(i0["ticks"], s0["ticks"]) / clk
        idle_pg_s = ticks_delta(i0["pg_ticks"], s0["pg_ticks"]) / clk
        load_x = xacts(s2) - xacts(s0) - idle_x * (s2["t_db"] - s0["t_db"])
        watch_path = os.path.join(snapdir, "watch.json")
        watch = load_json(watch_path) if os.path.exists(watch_path) else None
        segs, segs_in, opened, closed = segs_delta(s0["sockets"], s1["sockets"], watch)
        seg_t = s1["t_sockets"] - s0["t_sockets"]
        load_segs = segs - idle_seg_rate * seg_t
        load_in = segs_in - idle_in / seg_idle_t * seg_t

        def active_ms(s):
            return float(s["db"].get("active_time") or 0)

        idle_active = (active_ms(s0) - active_ms(i0)) / idle_t
        load_active = active_ms(s2) - active_ms(s0) - idle_active * (s2["t_db"] - s0["t_db"])
        pg_s = ticks_delta(s0["pg_ticks"], s1["pg_ticks"]) / clk
        tables = {}
        for rel, v2 in (s2.get("tables") or {}).items():
            v0 = (s0.get("tables") or {}).get(rel, {})
            vi = (i0.get("tables") or {}).get(rel, {})
            row = {}
            for k in ("scans", "ins", "upd", "del"):
                rate = ((v0.get(k) or 0) - (vi.get(k) or 0)) / idle_t
                d = (v2.get(k) or 0) - (v0.get(k) or 0) - rate * (s2["t_db"] - s0["t_db"])
                row[k] = d / ok if ok else math.nan
                row["idle_" + k] = rate
            tables[rel] = row
        notices = {}
        npath = os.path.join(snapdir, "notices.json")
        if os.path.exists(npath):
            notices = load_json(npath)
        c["pg"] = {
            "ssl": s1.get("ssl") or {},
            "states_end": s1.get("states") or {},
            "states_settled": s2.get("states") or {},
            "idle_in_tx_s": s2.get("idle_in_tx_max_s"),
            "states_idle0": i0.get("states") or {},
            "idle_in_tx_idle0_s": i0.get("idle_in_tx_max_s"),
            "notices": notices,
            "idle_s": idle_t,
            "idle_xact_rate": idle_x,
            "idle_rt_rate": idle_seg_rate,
            "idle_gh_cores": idle_gh_s / (s0["t"] - i0["t"]),
            "idle_pg_cores": idle_pg_s / (s0["t"] - i0["t"]),
            "xacts": load_x,
            "xacts_per_req": load_x / ok if ok else math.nan,
            "raw_xacts": xacts(s2) - xacts(s0),
            "settle_s": s2["t_db"] - s1["t"],
            "rt": load_segs,
            "rt_per_req": load_segs / ok if ok else math.nan,
            "in_per_req": load_in / ok if ok else math.nan,
            "raw_segs": segs,
            "closed": len(closed),
            "opened": len(opened),
            "idle_closed": len(idle_closed),
            "watch_samples": (watch or {}).get("samples"),
            "watch_cpu_s": (watch or {}).get("cpu_s"),
            "sockets": len(s1["sockets"]),
            "active_us": load_active * 1000 / ok if ok else math.nan,
            "idle_active_ms_s": idle_active,
            "pg_us": pg_s * 1e6 / ok if ok else math.nan,
            "pg_cores": pg_s / wall_snap if wall_snap else math.nan,
            "tup_ins": (s2["db"]["tup_inserted"] - s0["db"]["tup_inserted"]) / ok if ok else math.nan,
            "tables": tables,
        }
    other = busy_s - server_s - loadgen_s - pg_s
    c["other_cores"] = other / wall_snap if wall_snap else math.nan
    return c


def fmt(x, spec):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(x, spec)


def render_text(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]

    def line(r):
        return "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                         for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def render_md(head, rows, left=1):
    out = ["| " + " | ".join(head) + " |",
           "| " + " | ".join(["---"] * left + ["---:"] * (len(head) - left)) + " |"]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
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


INTRO = (
    "Every row is one load run of {duration} at {connections} connections in total. "
    "`hello` rows are the hello-world `POST /connect/token` of `crates/bench-hello` (axum + "
    "tokio, no work), driven the same way as the Gatehouse rows that name them in `vs`: "
    "oha for client credentials (a fixed body), wrk with `bench/wrk/flows.lua` for refresh "
    "tokens (each answer's new refresh token is its family's next request). `2×32` is two "
    "load generators at once, 32 connections each, one per instance (against the one "
    "hello server for the hello rows); its req/s is the sum and its p50/p99 the worse of "
    "the two generators'. client_credentials is HTTP Basic client authentication and an "
    "ES256 JWT; refresh_token is `grant_type=refresh_token` with rotation (ES256 access "
    "token, new refresh token).\n\n"
    "req/s counts 200 answers. Server CPU is utime+stime of the Gatehouse process(es), "
    "summed over both instances, over the 200 answers. PostgreSQL CPU is that of the "
    "database's backends and the cluster's background processes (WAL writer, "
    "checkpointer, ...); PG active is `pg_stat_database.active_time`, the time its "
    "backends spent executing statements (minus idle). xacts/req is `pg_stat_database` xact_commit + xact_rollback for "
    "the benchmark's database (read after waiting for PostgreSQL to publish its counters) "
    "and round trips/req the TCP data segments the Gatehouse processes sent to "
    "PostgreSQL (tcp_info data_segs_out, as `ss -ti` shows it, read through sock_diag and sampled every 0.1 s so that a connection closed during the run still counts; one per statement, BEGIN, COMMIT and each "
    "liveness ping sqlx's pool sends, on release always and on acquire from the idle "
    "queue); both minus the idle rate measured just before the run (the change-"
    "feed polling, table below) and over the 200 answers. Other cores is the machine's "
    "busy time (/proc/stat) minus Gatehouse, PostgreSQL and the load generators, over the "
    "wall time: well above 0 means someone else's work shared the cores."
)


def cmd_summarize(argv):
    p = argparse.ArgumentParser(prog="pg_report.py summarize")
    p.add_argument("cases")
    p.add_argument("--clk-tck", type=int, default=100)
    p.add_argument("--duration", default="?")
    p.add_argument("--connections", default="?")
    p.add_argument("--loadgen", default="?")
    p.add_argument("--loadavg", default="?")
    p.add_argument("--commit", default="unknown")
    p.add_argument("--pg-version", default="?")
    p.add_argument("--pool", default="?")
    p.add_argument("--markdown")
    p.add_argument("--note", action="append", default=[])
    a = p.parse_args(argv)

    cases = []
    with open(a.cases) as f:
        for line in f:
            if line.strip():
                cases.append(load_case(line.rstrip("\n").split("\t"), a.clk_tck))
    by_name = {c["name"]: c for c in cases}

    head = ["case", "backend", "inst.", "load", "req/s", "p50 ms", "p99 ms", "vs hello",
            "server CPU µs/req", "PG CPU µs/req", "PG active µs/req", "xacts/req", "round trips/req",
            "load gen CPU µs/req", "other cores", "200s", "non-200", "errors"]
    rows = []
    for c in cases:
        h = by_name.get(c["hello_ref"])
        ratio = c["ok_rps"] / h["ok_rps"] if h and h["ok_rps"] and c["kind"] != "hello" else None
        pg = c["pg"]
        rows.append([
            c["name"], c["backend"], str(c["instances"]) if c["kind"] != "hello" else "–",
            c["load"], f"{c['ok_rps']:,.0f}", f"{c['p50']:.2f}", f"{c['p99']:.2f}",
            "1" if c["kind"] == "hello" else (f"{ratio:.2f} of {h['name']}" if ratio else "–"),
            fmt(c["server_us"], ",.1f"),
            fmt(pg and pg["pg_us"], ",.1f"),
            fmt(pg and pg["active_us"], ",.1f"),
            fmt(pg and pg["xacts_per_req"], ".2f"),
            fmt(pg and pg["rt_per_req"], ".2f"),
            fmt(c["loadgen_us"], ",.1f"),
            fmt(max(c["other_cores"], 0.0), ".2f"),
            f"{c['ok']:,}", f"{c['non200']:,}", f"{c['failed']:,}",
        ])

    idle_head = ["case", "idle s", "xacts/s", "round trips/s", "PG active ms/s",
                 "Gatehouse CPU (cores)", "PostgreSQL CPU (cores)", "xacts in run (raw)",
                 "idle-rate share",
                 "PG sockets", "settle s", "RSS after, MB", "peak RSS, MB"]
    idle_rows = []
    for c in cases:
        pg = c["pg"]
        if not pg:
            continue
        idle_rows.append([
            c["name"], f"{pg['idle_s']:.1f}", f"{pg['idle_xact_rate']:.0f}",
            f"{pg['idle_rt_rate']:.0f}", f"{pg['idle_active_ms_s']:.1f}", f"{pg['idle_gh_cores']:.3f}",
            f"{pg['idle_pg_cores']:.3f}", f"{pg['raw_xacts']:,}",
            f"{1 - pg['xacts'] / pg['raw_xacts']:.0%}" if pg["raw_xacts"] else "–",
            str(pg["sockets"]), f"{pg['settle_s']:.0f}",
            f"{c['rss_mb']:.1f}", f"{c['hwm_mb']:.1f}",
        ])

    # Per-table work per request: tables with anything worth showing.
    pg_cases = [c for c in cases if c["pg"]]
    rels = sorted({r for c in pg_cases for r, v in c["pg"]["tables"].items()
                   if any(abs(v[k]) >= 0.005 for k in ("scans", "ins", "upd", "del"))})
    tab_head = ["table"] + [c["name"] for c in pg_cases]
    tab_rows = []
    for r in rels:
        row = [r]
        for c in pg_cases:
            v = c["pg"]["tables"].get(r)
            if not v:
                row.append("–")
                continue
            parts = []
            for k, label in (("scans", "scan"), ("ins", "ins"), ("upd", "upd"), ("del", "del")):
                if abs(v[k]) >= 0.005:
                    parts.append(f"{v[k]:.2f} {label}")
            row.append(", ".join(parts) or "0")
        tab_rows.append(row)
    idle_tables = {}
    for c in pg_cases:
        for r, v in c["pg"]["tables"].items():
            if v["idle_scans"] >= 0.5:
                idle_tables.setdefault(r, []).append(f"{c['name']} {v['idle_scans']:.0f}/s")

    notes = []
    for c in cases:
        if c["non200"]:
            notes.append(f"{c['name']}: status codes {c['codes']}")
        if c["failed"]:
            notes.append(f"{c['name']}: errors {c['errors']}")
        if len(c["p50s"]) > 1:
            notes.append(f"{c['name']}: per generator p50 "
                         + " / ".join(f"{x:.2f}" for x in c["p50s"]) + " ms, p99 "
                         + " / ".join(f"{x:.2f}" for x in c["p99s"]) + " ms")
        for w in c["wrk"]:
            if w.get("mode") == "refresh":
                notes.append(
                    f"{c['name']}: {w.get('loaded', 0):,} refresh-token families loaded, "
                    f"{w.get('left', 0):,} with a live token in the pool at the end"
                    + (f"; {w['starved']:,} requests found the pool empty (placeholder sent)"
                       if w.get("starved") else "")
                    + (f"; {w['noToken']:,} 200s without a refresh_token" if w.get("noToken") else ""))
            if w.get("firstError"):
                notes.append(f"{c['name']}: first unexpected answer: `{w['firstError'][:300]}`")
        if c["pg"]:
            pg = c["pg"]
            for when, states, age in (("before the idle window", pg["states_idle0"], pg["idle_in_tx_idle0_s"]),
                                      (f"{pg['settle_s']:.0f} s after the run", pg["states_settled"], pg["idle_in_tx_s"])):
                stuck = {k: v for k, v in states.items() if k.startswith("idle in transaction")}
                if stuck:
                    notes.append(f"{c['name']}: {when}, Gatehouse connections in state "
                                 + ", ".join(f"'{k}' ×{v}" for k, v in stuck.items())
                                 + (f" (the oldest transaction open for {age:.1f} s)"
                                    if age is not None else "")
                                 + f"; all states: {states}")
            n = pg["notices"]
            if any(n.values()):
                notes.append(f"{c['name']}: PostgreSQL notices in the Gatehouse logs during the case "
                             "(idle window, run, settle): "
                             + ", ".join(f"'{k}' ×{v}" for k, v in n.items() if v))
        if c["pg"] and (c["pg"]["closed"] or c["pg"]["opened"] or c["pg"]["idle_closed"]):
            pg = c["pg"]
            notes.append(f"{c['name']}: Gatehouse's PostgreSQL connections: {pg['opened']} opened and "
                         f"{pg['closed']} closed during the run"
                         + (f", {pg['idle_closed']} closed in the idle window" if pg["idle_closed"] else "")
                         + f" ({pg['sockets']} open at its end); a closed one counts up to the last "
                         f"of {pg['watch_samples']} samples (sampler CPU {pg['watch_cpu_s'] or 0:.2f} s)")
    aborted = {c["name"]: c["aborted"] for c in cases if c["aborted"]}
    if aborted:
        notes.append("requests cut off at the deadline (not counted as errors): "
                     + ", ".join(f"{k} {v}" for k, v in aborted.items()))
    ssl = [(c["name"], c["pg"]["ssl"]) for c in pg_cases if c["pg"]["ssl"]]
    if ssl:
        notes.append("Gatehouse's connections to PostgreSQL using TLS (pg_stat_ssl, at the end of "
                     "each run): " + ", ".join(
                         f"{n} {v.get('on', 0)} of {v.get('all', 0)}" for n, v in ssl)
                     + (f" ({ssl[0][1]['version']})" if ssl[0][1].get("version") else ""))
    if idle_tables:
        notes.append("scans per second while idle (the change-feed poll), subtracted above: "
                     + "; ".join(f"{r}: " + ", ".join(v) for r, v in idle_tables.items()))
    notes += a.note

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    setup = (f"{a.connections} connections, {a.duration} per case; {a.loadgen}; "
             f"{os.cpu_count()} CPUs ({cpu_model()}), load generators, Gatehouse and "
             f"PostgreSQL on the same machine; {a.pg_version}; Gatehouse pool "
             f"{a.pool}; load average before the runs {a.loadavg}; commit {a.commit}; {when}")

    print()
    print(render_text(head, rows))
    print()
    print(render_text(idle_head, idle_rows))
    print()
    if tab_rows:
        print(render_text(tab_head, tab_rows))
        print()
    for n in notes:
        print("note: " + n)
    print(setup)

    if a.markdown:
        md = [
            "# PostgreSQL benchmark: client credentials and refresh, one and two instances",
            "",
            "Produced by `bench/pg.sh` (do not edit by hand; run it again).",
            "",
            f"Setup: {setup}.",
            "",
            INTRO.format(duration=a.duration, connections=a.connections),
            "",
            render_md(head, rows, left=4),
            "",
            "Idle before each PostgreSQL run (the change feed is polled every 10 ms by each "
            "instance; these rates were subtracted), the share of the run's raw transaction "
            "count that the idle rate accounts for (above 100% when the polls ran less often "
            "under load than idle: the figure per request then comes out slightly below "
            "zero), and the Gatehouse processes' memory after the run (summed over instances):",
            "",
            render_md(idle_head, idle_rows),
            "",
        ]
        if tab_rows:
            md += [
                "Where the statements go, per 200 answer (`pg_stat_user_tables`: scans = "
                "seq_scan + idx_scan, rows inserted / updated / deleted; idle rate subtracted):",
                "",
                render_md(tab_head, tab_rows),
                "",
            ]
        if notes:
            md += [f"- {n}" for n in notes]
            md.append("")
        with open(a.markdown, "w") as f:
            f.write("\n".join(md))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, argv = sys.argv[1], sys.argv[2:]
    {"run": cmd_run, "check-token": cmd_check_token, "snap": cmd_snap, "watch": cmd_watch,
     "summarize": cmd_summarize}.get(cmd, lambda _: sys.exit(__doc__))(argv)


if __name__ == "__main__":
    main()
