"""Sends N client-credentials token requests one after another on one keep-alive
connection (bench/compare.sh's callgrind phase); exits non-zero unless all are 200."""
import http.client
import sys
from urllib.parse import urlsplit

url, auth, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
bad = 0
for _ in range(n):
    conn.request("POST", u.path, body="grant_type=client_credentials", headers=headers)
    r = conn.getresponse()
    r.read()
    bad += r.status != 200
if bad:
    sys.exit(f"{bad} of {n} token requests failed")
