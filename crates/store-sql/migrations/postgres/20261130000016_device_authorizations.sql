-- Device authorizations (RFC 8628): the digests of the device code and of the
-- normalised user code (never the codes), what the device asked for, the
-- person's decision, and the polling state every instance shares.
CREATE TABLE device_authorizations (
    device_digest      TEXT PRIMARY KEY,
    user_digest        TEXT NOT NULL UNIQUE,
    client_id          TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    audience           TEXT,
    status             TEXT NOT NULL,
    grant_id           TEXT,
    poll_interval      BIGINT NOT NULL,
    last_poll_at       BIGINT,
    last_poll_too_fast BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT
);
CREATE INDEX device_authorizations_expiry ON device_authorizations(expires_at);
CREATE INDEX device_authorizations_client ON device_authorizations(client_id);
