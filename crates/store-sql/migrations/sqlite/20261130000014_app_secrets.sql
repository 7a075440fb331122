-- An app's client secrets (SHA-256 digests): at most two active at once, so a
-- secret can be rotated with a grace period. Tokens name the secret they were
-- issued with and end when it is retired or expires. Retired and expired rows
-- stay until every token issued with them has expired. `apps.secret_hash` keeps
-- the newest active secret's digest.
CREATE TABLE app_secrets (
    -- Orders secrets made in the same second.
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    client_id    TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    digest       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    retired_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX app_secrets_client ON app_secrets (client_id);

-- Every existing app's one secret.
INSERT INTO app_secrets (id, client_id, digest, created_at, last_used_at)
SELECT lower(hex(randomblob(16))), client_id, secret_hash, created_at, last_used_at FROM apps;
