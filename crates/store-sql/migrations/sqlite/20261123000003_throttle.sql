-- Failed-authentication buckets shared by every process on this database.
CREATE TABLE throttle (
    key        TEXT PRIMARY KEY,
    level      REAL NOT NULL,
    updated_at REAL NOT NULL
);
