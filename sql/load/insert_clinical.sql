-- Bulk insert of accepted/clinical.parquet, cast to the contract's types.
INSERT INTO raw.clinical (
    site_id, patient_id, age_years, sex, height_cm, weight_kg, bmi, dxa_t_score, diagnosis,
    pathology_confirmed, primary_tumour, first_exam_date,
    source_row, batch_id, source_file, source_sha256, loaded_at, valid_from_seq
)
SELECT
    CAST(site_id AS VARCHAR),
    CAST(patient_id AS VARCHAR),
    CAST(age_years AS INTEGER),
    CAST(sex AS VARCHAR),
    CAST(height_cm AS DOUBLE),
    CAST(weight_kg AS DOUBLE),
    CAST(bmi AS DOUBLE),
    CAST(dxa_t_score AS DOUBLE),
    CAST(diagnosis AS VARCHAR),
    CAST(pathology_confirmed AS VARCHAR),
    CAST(primary_tumour AS VARCHAR),
    CAST(first_exam_date AS DATE),
    CAST(source_row AS INTEGER),
    CAST(batch_id AS VARCHAR),
    CAST(source_file AS VARCHAR),
    CAST(source_sha256 AS VARCHAR),
    $loaded_at,
    $load_seq
FROM read_parquet($path);
