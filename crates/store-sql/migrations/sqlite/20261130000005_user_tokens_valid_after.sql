-- Tokens naming a user issued at or before this time ended with the user's
-- deactivation, and stay ended after a re-activation (unix seconds, 0: never).
ALTER TABLE users ADD COLUMN tokens_valid_after INTEGER NOT NULL DEFAULT 0;
