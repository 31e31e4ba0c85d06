SELECT load_seq, batch_id, site_id, night, validation_outcome, clinical_rows, reads_rows,
       imaging_manifest_rows, quarantined_rows, superseded_rows, late_rows, loaded_at
FROM raw.batches
ORDER BY load_seq;
