-- Second factors (TOTP, RFC 6238) and the organization's policy.
-- How each session and each grant was signed in (RFC 8176 `amr` values, a JSON
-- list): what ID tokens report as `amr` and `acr`.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '["pwd"]';
ALTER TABLE grants ADD COLUMN amr TEXT NOT NULL DEFAULT '["pwd"]';
-- Everyone in the organization must sign in with a second factor.
ALTER TABLE orgs ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
-- One authenticator app per person: its secret sealed under the key-encryption
-- key (AES-256-GCM, bound to the user id), counted only once confirmed; the
-- last time step accepted, so no code is accepted twice.
CREATE TABLE user_totp (
    user_id       TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    confirmed_at  INTEGER,
    last_step     INTEGER NOT NULL DEFAULT 0
);
-- Recovery codes: SHA-256 of the user id and the 80-bit code, each usable once.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    digest  TEXT NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, digest)
);
