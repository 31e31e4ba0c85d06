-- A batch's summary.json counts per table. withdrawn_rows is what the hub's erasure for withdrawn patients
-- took from the batch's accepted file before this first load (erasure.json); the load adds what it erases.
INSERT INTO raw.validation_summary (
    batch_id, site_id, table_name, rows_in, accepted, quarantined, warnings, rejected_reason,
    source_file, source_sha256, withdrawn_rows
)
VALUES (
    $batch_id, $site_id, $table_name, $rows_in, $accepted, $quarantined, $warnings, $rejected_reason,
    $source_file, $source_sha256, $withdrawn_rows
);
