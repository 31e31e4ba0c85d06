SELECT batch_id, load_seq, content_sha256, clinical_rows, reads_rows, imaging_manifest_rows,
       quarantined_rows, warning_rows, superseded_rows, late_rows
FROM raw.batches
WHERE batch_id = $batch_id;
