-- The APIs a token exchange app (RFC 8693) may exchange a person's token for,
-- a JSON array of audiences like `scopes`. Empty for every app until an admin
-- sets it: deny by default.
ALTER TABLE apps ADD COLUMN exchange_audiences TEXT NOT NULL DEFAULT '[]';
