INSERT INTO raw.batches (
    batch_id, load_seq, site_id, night, content_sha256, validated_dir, received_at, loaded_at,
    validation_outcome, clinical_rows, reads_rows, imaging_manifest_rows, quarantined_rows,
    warning_rows, superseded_rows, late_rows, reinstated_rows, summary_json, submission_sha256, validation_status,
    deid_input_files, deid_deidentified, deid_quarantined, deid_duplicates,
    release_k_anonymity, release_generalisations
)
VALUES (
    $batch_id, $load_seq, $site_id, $night, $content_sha256, $validated_dir, $received_at, $loaded_at,
    $validation_outcome, $clinical_rows, $reads_rows, $imaging_manifest_rows, $quarantined_rows,
    $warning_rows, $superseded_rows, $late_rows, $reinstated_rows, $summary_json, $submission_sha256, $validation_status,
    $deid_input_files, $deid_deidentified, $deid_quarantined, $deid_duplicates,
    $release_k_anonymity, $release_generalisations
);
