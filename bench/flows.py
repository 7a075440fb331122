#!/usr/bin/env python3
"""The browser's side of the authorization code flow, for bench/user-flows.sh
(standard library only).

  flows.py sign-in BASE CLIENT_ID REDIRECT_URI SCOPE EMAIL PASSWORD OUT
      GET /connect/authorize, POST /login, POST /consent (allow), as a browser
      with a cookie jar. OUT (JSON) keeps what the commands below need: the
      session and CSRF cookies, the CSRF token and the authorize query.
  flows.py mint-codes SESSION N OUT [--concurrency C]
      N codes, one GET /connect/authorize each with the session cookie (consent
      is remembered, so each answers 303 with a fresh code); one per line to OUT.
  flows.py exchange SESSION CODES N OUT --client ID:SECRET [--concurrency C] [--first FILE]
      exchanges the first N codes of CODES at /connect/token and writes the
      refresh tokens (one family each) to OUT; the first answer goes to FILE.
  flows.py logins SESSION EMAIL PASSWORD N OUT [--concurrency C]
      N sign-ins (POST /login with the right password), C at a time, each on its
      own keep-alive connection. OUT is JSON shaped like oha's (latency, status
      codes; success is 303) and OUT.cpu this process's CPU seconds.
  flows.py hash-params DB_FILE EMAIL
      the Argon2 parameters of a user's stored password hash (PHC string)
"""

import argparse
import base64
import html
import http.client
import json
import re
import resource
import sqlite3
import statistics
import sys
import threading
import time
import urllib.parse


def die(msg):
    print(f"[bench] error: {msg}", file=sys.stderr)
    sys.exit(1)


def info(msg):
    print(f"[bench] {msg}", file=sys.stderr)


def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)


def cookies_of(resp):
    out = {}
    for h in resp.msg.get_all("Set-Cookie") or []:
        name, _, rest = h.partition("=")
        out[name.strip()] = rest.split(";", 1)[0]
    return out


def cookie_header(jar):
    return "; ".join(f"{k}={v}" for k, v in jar.items() if v)


def hidden(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    if not m:
        die(f"no hidden input {name!r} in the page:\n{page[:2000]}")
    return html.unescape(m.group(1))


def code_of(location):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    if "code" not in q:
        die(f"redirect without a code: {location}")
    return q["code"][0]


def request(conn, method, path, jar=None, form=None, headers=None):
    h = dict(headers or {})
    if jar:
        h["Cookie"] = cookie_header(jar)
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        h["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    return resp, data


# ------------------------------------------------------------------ sign-in
def cmd_sign_in(a):
    query = urllib.parse.urlencode({
        "client_id": a.client_id,
        "redirect_uri": a.redirect_uri,
        "scope": a.scope,
        "response_type": "code",
        "state": "x",
    }, quote_via=urllib.parse.quote)
    conn = connect(a.base)
    jar = {}
    resp, data = request(conn, "GET", f"/connect/authorize?{query}")
    if resp.status != 200:
        die(f"GET /connect/authorize: {resp.status} {data[:500]!r}")
    jar.update(cookies_of(resp))
    page = data.decode()
    csrf, req = hidden(page, "csrf_token"), hidden(page, "request")
    resp, data = request(conn, "POST", "/login", jar,
                         {"csrf_token": csrf, "request": req, "email": a.email, "password": a.password})
    jar.update(cookies_of(resp))
    if resp.status == 200 and b'action="/consent"' in data:
        page = data.decode()
        resp, data = request(conn, "POST", "/consent", jar,
                             {"csrf_token": hidden(page, "csrf_token"),
                              "request": hidden(page, "request"), "decision": "allow"})
        jar.update(cookies_of(resp))
    if resp.status not in (302, 303):
        die(f"sign-in did not end in a redirect: {resp.status} {data[:1000]!r}")
    code_of(resp.getheader("Location"))
    if "gatehouse_session" not in jar:
        die(f"no session cookie after sign-in (cookies: {sorted(jar)})")
    # Consent is now remembered: the same GET must answer with a code directly.
    resp, data = request(conn, "GET", f"/connect/authorize?{req}", jar)
    if resp.status not in (302, 303):
        die(f"second authorize with the session did not redirect: {resp.status} {data[:500]!r}")
    code_of(resp.getheader("Location"))
    with open(a.out, "w") as f:
        json.dump({"base": a.base, "cookies": jar, "csrf": csrf, "request": req}, f)


def load_session(path):
    with open(path) as f:
        return json.load(f)


# ------------------------------------------------------------------ workers
def run_workers(n, concurrency, base, job):
    """Calls job(conn, i) for i in 0..n-1 on `concurrency` threads, each with its
    own keep-alive connection. job returns a value or raises; results in order."""
    results = [None] * n
    nxt = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        conn = connect(base)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n or errors:
                return
            try:
                results[i] = job(conn, i)
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = connect(base)
                try:
                    results[i] = job(conn, i)
                except Exception as e:  # noqa: BLE001
                    errors.append(f"request {i}: {e!r}")
            except Exception as e:  # noqa: BLE001
                errors.append(f"request {i}: {e!r}")

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        die(f"{len(errors)} failed; first: {errors[0]}")
    return results


def cmd_mint_codes(a):
    s = load_session(a.session)
    path = f"/connect/authorize?{s['request']}"
    jar = {"gatehouse_session": s["cookies"]["gatehouse_session"]}

    def job(conn, _i):
        resp, data = request(conn, "GET", path, jar)
        if resp.status not in (302, 303):
            raise RuntimeError(f"{resp.status} {data[:300]!r}")
        return code_of(resp.getheader("Location"))

    t0 = time.perf_counter()
    codes = run_workers(a.n, a.concurrency, s["base"], job)
    dt = time.perf_counter() - t0
    with open(a.out, "w") as f:
        f.write("\n".join(codes) + "\n")
    info(f"minted {len(codes):,} codes in {dt:.1f} s ({len(codes) / dt:,.0f}/s, "
         f"{a.concurrency} connections)")


def cmd_exchange(a):
    s = load_session(a.session)
    with open(a.codes) as f:
        codes = [line.strip() for line in f if line.strip()][: a.n]
    if len(codes) < a.n:
        die(f"only {len(codes)} codes in {a.codes}")
    auth = "Basic " + base64.b64encode(a.client.encode()).decode()
    redirect = urllib.parse.parse_qs(s["request"])["redirect_uri"][0]
    first = {}

    def job(conn, i):
        resp, data = request(conn, "POST", "/connect/token",
                             form={"grant_type": "authorization_code", "code": codes[i],
                                   "redirect_uri": redirect},
                             headers={"Authorization": auth})
        if resp.status != 200:
            raise RuntimeError(f"{resp.status} {data[:300]!r}")
        body = json.loads(data)
        if i == 0:
            first["body"] = data
        if "refresh_token" not in body:
            raise RuntimeError(f"no refresh_token in {data[:300]!r}")
        return body["refresh_token"]

    t0 = time.perf_counter()
    tokens = run_workers(len(codes), a.concurrency, s["base"], job)
    dt = time.perf_counter() - t0
    with open(a.out, "w") as f:
        f.write("\n".join(tokens) + "\n")
    if a.first:
        with open(a.first, "wb") as f:
            f.write(first["body"])
    info(f"exchanged {len(tokens):,} codes for refresh tokens in {dt:.1f} s")


# ------------------------------------------------------------------ logins
def cmd_logins(a):
    s = load_session(a.session)
    # Only the CSRF cookie: each sign-in starts from a browser without a session.
    jar = {"gatehouse_csrf": s["cookies"]["gatehouse_csrf"]}
    form = {"csrf_token": s["csrf"], "request": s["request"],
            "email": a.email, "password": a.password}
    statuses = {}
    lock = threading.Lock()

    def job(conn, _i):
        t = time.perf_counter()
        resp, data = request(conn, "POST", "/login", jar, form)
        dt = time.perf_counter() - t
        ok = resp.status == 303 and "code=" in (resp.getheader("Location") or "")
        with lock:
            statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
            if not ok and "first" not in statuses:
                statuses["first"] = f"{resp.status} {data[:300]!r}"
        return dt

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    lat = run_workers(a.n, a.concurrency, s["base"], job)
    total = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    first = statuses.pop("first", None)
    if first:
        info(f"logins: first unexpected answer: {first}")
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))]  # noqa: E731
    doc = {
        "okStatus": "303",
        "summary": {"total": total, "requestsPerSec": len(lat) / total, "requests": len(lat)},
        "latencyPercentiles": {"p50": pct(50), "p99": pct(99), "mean": statistics.fmean(lat)},
        "statusCodeDistribution": statuses,
        "errorDistribution": {},
        "logins": {"concurrency": a.concurrency, "n": len(lat), "firstError": first or ""},
    }
    with open(a.out, "w") as f:
        json.dump(doc, f)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    with open(a.out + ".cpu", "w") as f:
        f.write(f"{cpu:.6f}\n")


def cmd_hash_params(a):
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    row = db.execute("SELECT password_hash FROM users WHERE email = ?", (a.email,)).fetchone()
    if not row or not row[0]:
        die(f"no password hash for {a.email}")
    # $argon2id$v=19$m=19456,t=2,p=1$salt$hash
    parts = row[0].split("$")
    print(f"{parts[1]} {parts[2]} {parts[3]}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sign-in")
    for name in ("base", "client_id", "redirect_uri", "scope", "email", "password", "out"):
        s.add_argument(name)
    s = sub.add_parser("mint-codes")
    s.add_argument("session")
    s.add_argument("n", type=int)
    s.add_argument("out")
    s.add_argument("--concurrency", type=int, default=8)
    s = sub.add_parser("exchange")
    s.add_argument("session")
    s.add_argument("codes")
    s.add_argument("n", type=int)
    s.add_argument("out")
    s.add_argument("--client", required=True)
    s.add_argument("--concurrency", type=int, default=8)
    s.add_argument("--first")
    s = sub.add_parser("logins")
    for name in ("session", "email", "password"):
        s.add_argument(name)
    s.add_argument("n", type=int)
    s.add_argument("out")
    s.add_argument("--concurrency", type=int, default=1)
    s = sub.add_parser("hash-params")
    s.add_argument("db")
    s.add_argument("email")
    a = p.parse_args()
    {"sign-in": cmd_sign_in, "mint-codes": cmd_mint_codes, "exchange": cmd_exchange,
     "logins": cmd_logins, "hash-params": cmd_hash_params}[a.cmd](a)


if __name__ == "__main__":
    main()
