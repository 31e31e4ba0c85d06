-- Loaded rows: exactly the submission columns and types of docs/data_contract.md section 2
-- ("Column types"), then lineage, then history. Value sets are CHECK (col IN (...)) constraints,
-- mirrored by expect_column_values_to_be_in_set in expectations/ (a test proves they agree).
--
-- Lineage: batch_id, source_file (the submission file the row came from), source_sha256 (that file's
-- checksum), source_row (1-based data row of that file). Every loaded row has all four.
-- History: loaded_at; valid_from_seq = load_seq of the batch that loaded the row; valid_to_seq =
-- load_seq of the batch that superseded it (NULL while current); superseded_by_batch = that batch.

CREATE TABLE raw.clinical (
    site_id              VARCHAR NOT NULL,
    patient_id           VARCHAR NOT NULL,
    age_years            INTEGER,
    sex                  VARCHAR CHECK (sex IN ('M', 'F')),
    height_cm            DOUBLE,
    weight_kg            DOUBLE,
    bmi                  DOUBLE,
    dxa_t_score          DOUBLE,
    diagnosis            VARCHAR CHECK (diagnosis IN ('OP', 'MET')),
    pathology_confirmed  VARCHAR CHECK (pathology_confirmed IN ('yes', 'no')),
    primary_tumour       VARCHAR,
    first_exam_date      DATE,
    source_row           INTEGER NOT NULL,
    batch_id             VARCHAR NOT NULL,
    source_file          VARCHAR NOT NULL,
    source_sha256        VARCHAR NOT NULL,
    loaded_at            TIMESTAMPTZ NOT NULL,
    valid_from_seq       BIGINT NOT NULL,
    valid_to_seq         BIGINT,
    superseded_by_batch  VARCHAR
);

CREATE TABLE raw.reads (
    site_id                        VARCHAR NOT NULL,
    patient_id                     VARCHAR NOT NULL,
    accession_id                   VARCHAR,
    modality                       VARCHAR NOT NULL CHECK (modality IN ('XR', 'CT', 'MR')),
    level                          VARCHAR NOT NULL CHECK (level IN ('T1', 'T2', 'T3', 'T4', 'T5', 'T6', 'T7', 'T8', 'T9', 'T10', 'T11', 'T12', 'L1', 'L2', 'L3', 'L4', 'L5')),
    fracture_line                  VARCHAR CHECK (fracture_line IN ('yes', 'no')),
    marrow_oedema                  VARCHAR CHECK (marrow_oedema IN ('yes', 'no')),
    soft_tissue_mass               VARCHAR CHECK (soft_tissue_mass IN ('yes', 'no')),
    bone_destruction               VARCHAR CHECK (bone_destruction IN ('yes', 'no')),
    posterior_wall_bulging         VARCHAR CHECK (posterior_wall_bulging IN ('yes', 'no')),
    posterior_element_involvement  VARCHAR CHECK (posterior_element_involvement IN ('yes', 'no')),
    wedge_shape                    VARCHAR CHECK (wedge_shape IN ('yes', 'no')),
    posterior_fat_signal           VARCHAR CHECK (posterior_fat_signal IN ('yes', 'no')),
    intravertebral_cleft           VARCHAR CHECK (intravertebral_cleft IN ('yes', 'no')),
    normal_disc                    VARCHAR CHECK (normal_disc IN ('yes', 'no')),
    disc_compression               VARCHAR CHECK (disc_compression IN ('yes', 'no')),
    whole_body_collapse            VARCHAR CHECK (whole_body_collapse IN ('yes', 'no')),
    genant_grade                   INTEGER CHECK (genant_grade IN (0, 1, 2, 3)),
    height_loss_pct                DOUBLE,
    source_row                     INTEGER NOT NULL,
    batch_id                       VARCHAR NOT NULL,
    source_file                    VARCHAR NOT NULL,
    source_sha256                  VARCHAR NOT NULL,
    loaded_at                      TIMESTAMPTZ NOT NULL,
    valid_from_seq                 BIGINT NOT NULL,
    valid_to_seq                   BIGINT,
    superseded_by_batch            VARCHAR
);

CREATE TABLE raw.imaging_manifest (
    site_id              VARCHAR NOT NULL,
    patient_id           VARCHAR NOT NULL,
    accession_id         VARCHAR,
    study_uid            VARCHAR,
    series_uid           VARCHAR NOT NULL,
    modality             VARCHAR NOT NULL CHECK (modality IN ('DX', 'CR', 'CT', 'MR')),
    study_date           DATE,
    manufacturer         VARCHAR,
    model                VARCHAR,
    field_strength       DOUBLE,
    sequence_family      VARCHAR CHECK (sequence_family IN ('T1', 'T2', 'FS', 'other')),
    repetition_time      DOUBLE,
    echo_time            DOUBLE,
    slice_thickness      DOUBLE,
    pixel_spacing        DOUBLE,
    image_rows           INTEGER,
    image_columns        INTEGER,
    instance_count       INTEGER,
    source_row           INTEGER NOT NULL,
    batch_id             VARCHAR NOT NULL,
    source_file          VARCHAR NOT NULL,
    source_sha256        VARCHAR NOT NULL,
    loaded_at            TIMESTAMPTZ NOT NULL,
    valid_from_seq       BIGINT NOT NULL,
    valid_to_seq         BIGINT,
    superseded_by_batch  VARCHAR
);
