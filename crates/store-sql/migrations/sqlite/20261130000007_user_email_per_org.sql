-- no-transaction
-- E-mail addresses are unique per organization, not across the installation:
-- one tenant can neither learn that an address exists in another nor squat it.
-- SQLite cannot drop a column's UNIQUE constraint, so the table is rebuilt (the
-- documented procedure: foreign keys off, copy, swap, check, foreign keys on).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE users_new (
    id                 TEXT PRIMARY KEY,
    org_id             TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email              TEXT NOT NULL,
    name               TEXT,
    password_hash      TEXT,
    role               TEXT NOT NULL,
    groups             TEXT NOT NULL,
    status             TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    tokens_valid_after INTEGER NOT NULL DEFAULT 0,
    UNIQUE (org_id, email)
);
INSERT INTO users_new (id, org_id, email, name, password_hash, role, groups, status, created_at, tokens_valid_after)
    SELECT id, org_id, email, name, password_hash, role, groups, status, created_at, tokens_valid_after FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_org ON users(org_id);
CREATE INDEX users_email ON users(email);
COMMIT;
PRAGMA foreign_keys = ON;
