-- What migrations ran, with the checksum of each file (cohortpool.warehouse.migrate).
CREATE TABLE IF NOT EXISTS main.schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        VARCHAR NOT NULL,
    sha256      VARCHAR NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL
);
