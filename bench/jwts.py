#!/usr/bin/env python3
"""Signed JWTs for bench/credentials.sh, one per line, each with its own jti
(an ES256 key made here; python `cryptography`, not Gatehouse's code).

  jwts.py KEY.pem key                          makes the key; prints its JWKS
  jwts.py KEY.pem assertions CLIENT_ID AUD N   private_key_jwt assertions (RFC 7523)
  jwts.py KEY.pem proofs METHOD URL TOKEN|- N  DPoP proofs (RFC 9449; ath of TOKEN)
"""

import base64
import hashlib
import json
import os
import sys
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwk(key):
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}


def sign(key, header, claims):
    h = b64(json.dumps(header, separators=(",", ":")).encode())
    c = b64(json.dumps(claims, separators=(",", ":")).encode())
    r, s = decode_dss_signature(key.sign(f"{h}.{c}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{h}.{c}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


path, cmd, *args = sys.argv[1:]
if cmd == "key":
    key = ec.generate_private_key(ec.SECP256R1())
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    print(json.dumps({"keys": [dict(jwk(key), kid="bench-1", use="sig", alg="ES256")]}))
    sys.exit(0)
key = serialization.load_pem_private_key(open(path, "rb").read(), None)
now = int(time.time())
out = sys.stdout
if cmd == "assertions":
    client_id, aud, n = args[0], args[1], int(args[2])
    for _ in range(n):
        out.write(sign(key, {"alg": "ES256", "typ": "JWT", "kid": "bench-1"},
                       {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 240,
                        "jti": uuid.uuid4().hex}) + "\n")
elif cmd == "proofs":
    method, url, token, n = args[0], args[1], args[2], int(args[3])
    claims = {"htm": method, "htu": url, "iat": now}
    if token != "-":
        claims["ath"] = b64(hashlib.sha256(token.encode()).digest())
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": jwk(key)}
    for _ in range(n):
        out.write(sign(key, header, dict(claims, jti=uuid.uuid4().hex)) + "\n")
else:
    sys.exit(f"unknown command {cmd}")
