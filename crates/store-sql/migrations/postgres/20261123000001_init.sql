-- Gatehouse schema, PostgreSQL flavour. Times are unix seconds (BIGINT), ids TEXT,
-- lists JSON arrays in TEXT, so the Rust side reads both backends the same way.
-- TEXT rather than JSONB is deliberate: nothing queries inside the lists, and
-- keeping the SQLite and PostgreSQL schemas (and decoders) symmetrical is worth
-- more than what JSONB would offer here.

CREATE TABLE orgs (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE roles (
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    permissions TEXT NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT,
    password_hash TEXT,
    role          TEXT NOT NULL,
    groups        TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX users_org ON users(org_id);

CREATE TABLE apis (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    audience         TEXT NOT NULL UNIQUE,
    scopes           TEXT NOT NULL,
    token_format     TEXT NOT NULL,
    signing_alg      TEXT NOT NULL,
    access_token_ttl BIGINT NOT NULL,
    client_id        TEXT NOT NULL UNIQUE,
    secret_hash      TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX apis_org ON apis(org_id);

CREATE TABLE apps (
    id                        TEXT PRIMARY KEY,
    client_id                 TEXT NOT NULL UNIQUE,
    org_id                    TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name                      TEXT NOT NULL,
    description               TEXT,
    grant_types               TEXT NOT NULL,
    on_behalf_of              TEXT REFERENCES users(id),
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    scopes                    TEXT NOT NULL,
    default_scopes            TEXT NOT NULL,
    default_audience          TEXT,
    secret_hash               TEXT NOT NULL,
    generation                BIGINT NOT NULL,
    status                    TEXT NOT NULL,
    created_at                BIGINT NOT NULL
);
CREATE INDEX apps_org ON apps(org_id);

CREATE TABLE reference_tokens (
    digest     TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    audience   TEXT NOT NULL,
    claims     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX reference_tokens_expiry ON reference_tokens(expires_at);

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,
    alg                TEXT NOT NULL,
    state              TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);

-- Every change that can stale a cache or end tokens, in commit order. A
-- sequence alone hands out numbers in insert order, not commit order; the
-- store's writers take a transaction-level advisory lock before appending, so
-- `seq` order is commit order and a reader never skips a late committer.
CREATE TABLE changes (
    seq  BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    at   BIGINT NOT NULL
);
