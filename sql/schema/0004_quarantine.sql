-- Rows validation rejected (quarantine.csv) or flagged but loaded (warnings.csv), kept queryable so
-- nothing is lost: every submitted row is in raw.<table>, in raw.quarantine, or counted as rejected
-- in raw.validation_summary. Columns as docs/data_contract.md section 3, plus lineage.
CREATE TABLE raw.quarantine (
    batch_id     VARCHAR NOT NULL,
    site_id      VARCHAR NOT NULL,
    table_name   VARCHAR,                      -- "table" in quarantine.csv (a SQL keyword)
    source_row   INTEGER,
    key          VARCHAR,
    expectation  VARCHAR,
    severity     VARCHAR,
    reason       VARCHAR,
    value        VARCHAR,
    file_row     INTEGER NOT NULL,             -- 1-based data row of quarantine.csv
    loaded_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (batch_id, file_row)
);

CREATE TABLE raw.validation_warnings (
    batch_id     VARCHAR NOT NULL,
    site_id      VARCHAR NOT NULL,
    table_name   VARCHAR,
    source_row   INTEGER,
    key          VARCHAR,
    expectation  VARCHAR,
    severity     VARCHAR,
    reason       VARCHAR,
    value        VARCHAR,
    file_row     INTEGER NOT NULL,             -- 1-based data row of warnings.csv
    loaded_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (batch_id, file_row)
);
