"""Sends N POSTs of BODY (default: a client credentials token request) one after
another on one keep-alive connection, with AUTH as the Authorization header
(bench/compare.sh's callgrind phase); exits non-zero unless all answer 200."""
import http.client
import sys
from urllib.parse import urlsplit

url, auth, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = sys.argv[4] if len(sys.argv) > 4 else "grant_type=client_credentials"
u = urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
bad = 0
for _ in range(n):
    conn.request("POST", u.path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    bad += r.status != 200 or (u.path.endswith("introspect") and b'"active":true' not in data)
if bad:
    sys.exit(f"{bad} of {n} requests to {u.path} failed")
