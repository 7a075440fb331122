-- WebAuthn passkeys: several per person, each named by them. The credential
-- (public key, algorithm, flags) is webauthn-rs's Passkey as JSON; the
-- signature counter is kept beside it so that accepting an assertion is one
-- conditional UPDATE (a counter that did not go up is refused, even when two
-- instances see the same assertion at once). The user handle is the random
-- WebAuthn user id the authenticator keeps (one per person, never the user id).
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_handle   TEXT NOT NULL,
    credential_id TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    counter       BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);
-- A ceremony's server-side state (its challenge) between the two requests:
-- keyed by the digest of a random value held in the browser's cookie, taken
-- (deleted) by the finishing request, so each challenge works once, and only
-- until it expires.
CREATE TABLE passkey_challenges (
    id_digest  TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
