-- One version of every loaded row, as of a load: the rows that were current right after the load
-- numbered as_of_seq (raw.batches.load_seq), or the rows current now when as_of_seq is NULL.
-- Findings and pathology_confirmed become BOOLEAN here (docs/data_contract.md, "Column types").

CREATE OR REPLACE MACRO staging.clinical_asof(as_of_seq) AS TABLE
SELECT
    site_id,
    patient_id,
    age_years,
    sex,
    height_cm,
    weight_kg,
    bmi,
    dxa_t_score,
    diagnosis,
    pathology_confirmed = 'yes' AS pathology_confirmed,
    primary_tumour,
    first_exam_date,
    batch_id,
    source_row
FROM raw.clinical
WHERE CASE
    WHEN as_of_seq IS NULL THEN valid_to_seq IS NULL
    ELSE valid_from_seq <= as_of_seq AND (valid_to_seq IS NULL OR valid_to_seq > as_of_seq)
END;

CREATE OR REPLACE MACRO staging.reads_asof(as_of_seq) AS TABLE
SELECT
    site_id,
    patient_id,
    accession_id,
    modality,
    level,
    fracture_line = 'yes' AS fracture_line,
    marrow_oedema = 'yes' AS marrow_oedema,
    soft_tissue_mass = 'yes' AS soft_tissue_mass,
    bone_destruction = 'yes' AS bone_destruction,
    posterior_wall_bulging = 'yes' AS posterior_wall_bulging,
    posterior_element_involvement = 'yes' AS posterior_element_involvement,
    wedge_shape = 'yes' AS wedge_shape,
    posterior_fat_signal = 'yes' AS posterior_fat_signal,
    intravertebral_cleft = 'yes' AS intravertebral_cleft,
    normal_disc = 'yes' AS normal_disc,
    disc_compression = 'yes' AS disc_compression,
    whole_body_collapse = 'yes' AS whole_body_collapse,
    genant_grade,
    height_loss_pct,
    batch_id,
    source_row
FROM raw.reads
WHERE CASE
    WHEN as_of_seq IS NULL THEN valid_to_seq IS NULL
    ELSE valid_from_seq <= as_of_seq AND (valid_to_seq IS NULL OR valid_to_seq > as_of_seq)
END;

CREATE OR REPLACE MACRO staging.imaging_manifest_asof(as_of_seq) AS TABLE
SELECT
    site_id,
    patient_id,
    accession_id,
    study_uid,
    series_uid,
    modality,
    study_date,
    manufacturer,
    model,
    field_strength,
    sequence_family,
    repetition_time,
    echo_time,
    slice_thickness,
    pixel_spacing,
    image_rows,
    image_columns,
    instance_count,
    batch_id,
    source_row
FROM raw.imaging_manifest
WHERE CASE
    WHEN as_of_seq IS NULL THEN valid_to_seq IS NULL
    ELSE valid_from_seq <= as_of_seq AND (valid_to_seq IS NULL OR valid_to_seq > as_of_seq)
END;
