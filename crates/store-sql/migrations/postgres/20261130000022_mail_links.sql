-- E-mailed links that set a password: invitations and resets. Only the
-- token's SHA-256 is kept; a person has at most one link (a new one replaces
-- the old), and a used one stays marked until then.
CREATE TABLE mail_links (
    digest     TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX mail_links_user ON mail_links(user_id);
