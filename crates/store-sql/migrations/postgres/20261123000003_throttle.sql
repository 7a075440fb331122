-- Failed-authentication buckets shared by every instance on this database.
CREATE TABLE throttle (
    key        TEXT PRIMARY KEY,
    level      DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
