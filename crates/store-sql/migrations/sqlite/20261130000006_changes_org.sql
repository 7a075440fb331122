-- The organization whose APIs may see a change in the revocation feed (empty:
-- every API, e.g. signing keys; also what rows from before this column read as).
ALTER TABLE changes ADD COLUMN org_id TEXT NOT NULL DEFAULT '';
