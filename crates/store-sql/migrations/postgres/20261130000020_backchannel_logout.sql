-- OpenID Connect Back-Channel Logout 1.0: an app's registered logout URI, and
-- the durable queue of logout tokens to deliver. A row is enqueued in the
-- same transaction that ends a session (or deactivates its person), for each
-- app the session signed into (a grant with its `sid`) that registered a URI;
-- a worker on any instance claims it with a lease (`lease_until`), POSTs the
-- logout token (signed at delivery) and records the outcome.
CREATE TABLE app_backchannel_logout (
    client_id        TEXT PRIMARY KEY,
    uri              TEXT NOT NULL,
    session_required BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE logout_deliveries (
    seq             BIGSERIAL PRIMARY KEY,
    client_id       TEXT NOT NULL,
    org_id          TEXT NOT NULL,
    uri             TEXT NOT NULL,
    sub             TEXT NOT NULL,
    sid             TEXT,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    lease_owner     TEXT,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX logout_deliveries_due ON logout_deliveries(status, next_attempt_at);
CREATE INDEX logout_deliveries_client ON logout_deliveries(client_id, seq);
CREATE INDEX logout_deliveries_sid ON logout_deliveries(sid, client_id);
CREATE INDEX grants_sid ON grants(sid);
