-- Bulk insert of accepted/imaging_manifest.parquet, cast to the contract's types.
INSERT INTO raw.imaging_manifest (
    site_id, patient_id, accession_id, study_uid, series_uid, modality, study_date, manufacturer,
    model, field_strength, sequence_family, repetition_time, echo_time, slice_thickness,
    pixel_spacing, image_rows, image_columns, instance_count,
    source_row, batch_id, source_file, source_sha256, loaded_at, valid_from_seq
)
SELECT
    CAST(site_id AS VARCHAR),
    CAST(patient_id AS VARCHAR),
    CAST(accession_id AS VARCHAR),
    CAST(study_uid AS VARCHAR),
    CAST(series_uid AS VARCHAR),
    CAST(modality AS VARCHAR),
    CAST(study_date AS DATE),
    CAST(manufacturer AS VARCHAR),
    CAST(model AS VARCHAR),
    CAST(field_strength AS DOUBLE),
    CAST(sequence_family AS VARCHAR),
    CAST(repetition_time AS DOUBLE),
    CAST(echo_time AS DOUBLE),
    CAST(slice_thickness AS DOUBLE),
    CAST(pixel_spacing AS DOUBLE),
    CAST(image_rows AS INTEGER),
    CAST(image_columns AS INTEGER),
    CAST(instance_count AS INTEGER),
    CAST(source_row AS INTEGER),
    CAST(batch_id AS VARCHAR),
    CAST(source_file AS VARCHAR),
    CAST(source_sha256 AS VARCHAR),
    $loaded_at,
    $load_seq
FROM read_parquet($path);
