-- Who sent what, when, and how validation judged it. One batch = one site-night submission.
-- load_seq orders loads (1, 2, ...): the history columns of the data tables refer to it, so an as-of
-- query by load_seq is deterministic (timestamps are recorded too, for people).
CREATE TABLE raw.sites (
    site_id          VARCHAR PRIMARY KEY,
    first_batch_id   VARCHAR NOT NULL,
    first_loaded_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE raw.batches (
    batch_id            VARCHAR PRIMARY KEY,
    load_seq            BIGINT NOT NULL UNIQUE,
    site_id             VARCHAR NOT NULL,
    night               DATE NOT NULL,
    content_sha256      VARCHAR NOT NULL,      -- checksum of the validated batch's files (idempotency key)
    validated_dir       VARCHAR NOT NULL,      -- where it was loaded from (path, for people)
    received_at         TIMESTAMPTZ,           -- when validation wrote the batch (summary.json mtime)
    loaded_at           TIMESTAMPTZ NOT NULL,
    validation_outcome  VARCHAR NOT NULL CHECK (validation_outcome IN ('passed', 'quarantined')),
    clinical_rows       INTEGER NOT NULL,
    reads_rows          INTEGER NOT NULL,
    imaging_manifest_rows INTEGER NOT NULL,
    quarantined_rows    INTEGER NOT NULL,
    warning_rows        INTEGER NOT NULL,
    superseded_rows     INTEGER NOT NULL,      -- earlier current rows this batch replaced
    summary_json        VARCHAR NOT NULL       -- summary.json as validation wrote it
);

-- The checksum of every file of a validated batch, as loaded.
CREATE TABLE raw.batch_files (
    batch_id  VARCHAR NOT NULL,
    file      VARCHAR NOT NULL,                -- path relative to the validated batch folder
    sha256    VARCHAR NOT NULL,
    bytes     BIGINT NOT NULL,
    PRIMARY KEY (batch_id, file)
);

-- summary.json per table: how many rows came in, were accepted, quarantined, flagged, rejected.
CREATE TABLE raw.validation_summary (
    batch_id     VARCHAR NOT NULL,
    site_id      VARCHAR NOT NULL,
    table_name   VARCHAR NOT NULL CHECK (table_name IN ('clinical', 'reads', 'imaging_manifest')),
    rows_in      INTEGER NOT NULL,
    accepted     INTEGER NOT NULL,
    quarantined  INTEGER NOT NULL,
    warnings     INTEGER NOT NULL,
    rejected     INTEGER NOT NULL,
    PRIMARY KEY (batch_id, table_name)
);
