-- Signing in through an organization's own OpenID Connect provider.
-- One provider per organization: its client secret sealed under the
-- key-encryption key (AES-256-GCM, bound to the organization), the e-mail
-- domains (a JSON list) whose people are sent there, whether they may still
-- use local passwords, and the role of people created on first sign-in.
CREATE TABLE upstream_providers (
    org_id               TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    issuer               TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    sealed_client_secret TEXT NOT NULL,
    domains              TEXT NOT NULL,
    allow_passwords      BOOLEAN NOT NULL,
    default_role         TEXT NOT NULL,
    updated_at           INTEGER NOT NULL
);
-- Sign-ins sent to the provider, until they come back (single use): keyed by
-- SHA-256 of the `state` sent, with the nonce, the PKCE verifier and the
-- authorization request to continue.
CREATE TABLE upstream_logins (
    state_digest  TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    nonce         TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    request       TEXT NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX upstream_logins_expiry ON upstream_logins (expires_at);
