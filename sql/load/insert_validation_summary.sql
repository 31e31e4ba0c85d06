INSERT INTO raw.validation_summary (
    batch_id, site_id, table_name, rows_in, accepted, quarantined, warnings, rejected_reason,
    source_file, source_sha256
)
VALUES (
    $batch_id, $site_id, $table_name, $rows_in, $accepted, $quarantined, $warnings, $rejected_reason,
    $source_file, $source_sha256
);
