-- quarantine.csv or warnings.csv (registered by the loader as the Arrow table "issues", all text,
-- with its 1-based data row in file_row) into raw.quarantine or raw.validation_warnings.
INSERT INTO {{table}} (
    batch_id, site_id, table_name, source_row, key, expectation, severity, reason, value, file_row, loaded_at
)
SELECT
    $batch_id,
    $site_id,
    NULLIF("table", ''),
    CAST(NULLIF(source_row, '') AS INTEGER),
    NULLIF(key, ''),
    NULLIF(expectation, ''),
    NULLIF(severity, ''),
    NULLIF(reason, ''),
    value,
    file_row,
    $loaded_at
FROM issues;
