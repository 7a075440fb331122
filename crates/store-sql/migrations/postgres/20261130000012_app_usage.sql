-- Each app's usage per UTC day (days since 1970-01-01): tokens issued and failed
-- client authentications. Counted in memory and added to the day's row by the
-- housekeeping of every instance; days older than the retention are purged.
CREATE TABLE app_usage (
    client_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    tokens_issued BIGINT NOT NULL DEFAULT 0,
    failed_auths BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, day)
);
