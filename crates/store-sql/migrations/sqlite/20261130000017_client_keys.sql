-- private_key_jwt client authentication (RFC 7523): an app's public keys, as a
-- JWKS document (JSON text) or the URL it is fetched from; at most one is set,
-- and an app with either has no secret.
ALTER TABLE apps ADD COLUMN jwks TEXT;
ALTER TABLE apps ADD COLUMN jwks_uri TEXT;

-- The `jti` of every client assertion accepted, until its `exp`, so that each
-- assertion authenticates once on any instance; purged once expired.
CREATE TABLE client_assertion_jtis (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis(expires_at);
