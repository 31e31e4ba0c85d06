INSERT INTO raw.validation_summary (
    batch_id, site_id, table_name, rows_in, accepted, quarantined, warnings, rejected
)
VALUES ($batch_id, $site_id, $table_name, $rows_in, $accepted, $quarantined, $warnings, $rejected);
