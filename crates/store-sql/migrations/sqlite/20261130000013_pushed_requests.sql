-- Pushed authorization requests (RFC 9126): the request's parameters, kept for
-- a minute under the digest of their request_uri (never the URI itself), and
-- claimed once by the authorization endpoint.
CREATE TABLE pushed_requests (
    digest     TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    params     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX pushed_requests_expiry ON pushed_requests(expires_at);

-- Authorization requests of this app must be pushed first.
ALTER TABLE apps ADD COLUMN require_par INTEGER NOT NULL DEFAULT 0;
