-- Who changed what in an organization, written in the change's own transaction.
CREATE TABLE audit_events (
    seq        BIGSERIAL PRIMARY KEY,
    org_id     TEXT NOT NULL,
    at         BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    address    TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_events_org ON audit_events(org_id, seq);

-- When a token was last issued to the app (written lazily, batched).
ALTER TABLE apps ADD COLUMN last_used_at BIGINT;
