#!/usr/bin/env python3
"""Keys and client assertions for the private_key_jwt tests, made with authlib
(and joserfc, which it signs with): an implementation independent of Gatehouse.

  private_key_jwt.py keygen ALG KID   -> {"private": JWK, "public": JWK}
  private_key_jwt.py sign < REQUEST   -> the assertion
  private_key_jwt.py batch N < REQUEST -> N assertions, one a line

REQUEST is JSON: {"key": private JWK, "client_id", "aud", "alg", "expires_in",
"claims": {...overrides}, "header": {...}, "mode": "authlib" | "none" | "hmac"}.
"none" and "hmac" forge what an attacker would send (authlib refuses to make
them with an asymmetric key): alg none, and HS256 keyed with the public key.
"""
import base64
import json
import sys
import time

from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def keygen(alg: str, kid: str) -> dict:
    params = {"kid": kid}
    if alg in ("RS256", "PS256"):
        key = RSAKey.generate_key(2048, parameters=params, private=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=params, private=True)
    elif alg == "EdDSA":
        key = OKPKey.generate_key("Ed25519", parameters=params, private=True)
    else:
        raise SystemExit(f"unknown alg {alg}")
    return {"private": key.as_dict(private=True), "public": key.as_dict(private=False)}


def sign(req: dict) -> str:
    mode = req.get("mode", "authlib")
    claims = dict(req.get("claims") or {})
    if mode == "authlib":
        return private_key_jwt_sign(
            req["key"],
            req["client_id"],
            req["aud"],
            alg=req["alg"],
            claims=claims,
            header=req.get("header"),
            expires_in=req.get("expires_in", 120),
        )
    now = int(time.time())
    payload = {
        "iss": req["client_id"],
        "sub": req["client_id"],
        "aud": req["aud"],
        "iat": now,
        "exp": now + 120,
        "jti": b64(now.to_bytes(8, "big")) + str(id(req)),
    }
    payload.update(claims)
    if mode == "none":
        header = {"alg": "none"}
        return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}."
    if mode == "hmac":
        # The public key, as the verifier would hold it, used as an HMAC secret.
        public = json.dumps(req["key"], sort_keys=True).encode()
        header = {"alg": "HS256", "kid": req["key"].get("kid")}
        return jwt.encode(header, payload, OctKey.import_key(public), algorithms=["HS256"])
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    if sys.argv[1] == "keygen":
        print(json.dumps(keygen(sys.argv[2], sys.argv[3])))
    elif sys.argv[1] == "sign":
        print(sign(json.loads(sys.stdin.read())))
    elif sys.argv[1] == "batch":
        # N assertions, one a line (each with its own jti), for the speed test.
        req = json.loads(sys.stdin.read())
        for _ in range(int(sys.argv[2])):
            print(sign(dict(req)))
