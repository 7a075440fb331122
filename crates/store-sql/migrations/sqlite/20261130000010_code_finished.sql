-- When the first redemption of a code finished issuing (or refusing) tokens: a
-- concurrent replay revokes the grant only after that, so there is always
-- exactly one winner.
ALTER TABLE auth_codes ADD COLUMN finished_at INTEGER;
