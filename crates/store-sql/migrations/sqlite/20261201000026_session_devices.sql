-- What a person sees of each of their sessions on /account: the browser's
-- User-Agent (cut to 256 characters, controls removed) and client address at
-- sign-in, and when it was last seen (written at most every few minutes).
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN address TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
