-- A person's OpenID Connect standard claims (Core §5.1) beside `name` and
-- `email`: NULL means "no value" (never sent). `updated_at` (unix seconds)
-- moves whenever one of them, `name` included, changes; existing users start
-- at their creation time. Grants keep the `claims` request parameter (Core
-- §5.5, JSON; NULL when none was sent) for their ID tokens.
ALTER TABLE users ADD COLUMN given_name TEXT;
ALTER TABLE users ADD COLUMN family_name TEXT;
ALTER TABLE users ADD COLUMN locale TEXT;
ALTER TABLE users ADD COLUMN zoneinfo TEXT;
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
UPDATE users SET updated_at = created_at;
ALTER TABLE grants ADD COLUMN claims TEXT;
