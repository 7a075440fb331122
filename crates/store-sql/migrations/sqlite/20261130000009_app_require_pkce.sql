-- Authorization requests of this app must carry a PKCE challenge. Apps from
-- before keep working as they did; new authorization code apps require it.
ALTER TABLE apps ADD COLUMN require_pkce INTEGER NOT NULL DEFAULT 0;
