-- analysis.vertebra_reads: one row per current read of a fractured vertebra on one modality, with the
-- patient's diagnosis. Reads whose patient has no current clinical row are not analysable (no group)
-- and are left out; sql/checks/warn_reads_without_current_patient.sql lists them.
-- analysis.vertebra_reads_asof(load_seq) gives the same set as it was right after that load.
CREATE OR REPLACE MACRO analysis.vertebra_reads_asof(as_of_seq) AS TABLE
SELECT
    r.site_id,
    r.patient_id,
    p.diagnosis,
    r.level,
    r.modality,
    r.fracture_line,
    r.marrow_oedema,
    r.soft_tissue_mass,
    r.bone_destruction,
    r.posterior_wall_bulging,
    r.posterior_element_involvement,
    r.wedge_shape,
    r.posterior_fat_signal,
    r.intravertebral_cleft,
    r.normal_disc,
    r.disc_compression,
    r.whole_body_collapse,
    r.genant_grade,
    r.height_loss_pct,
    r.batch_id
FROM staging.reads_asof(as_of_seq) AS r
JOIN staging.clinical_asof(as_of_seq) AS p
    ON p.site_id = r.site_id AND p.patient_id = r.patient_id;

CREATE OR REPLACE VIEW analysis.vertebra_reads AS
SELECT * FROM analysis.vertebra_reads_asof(NULL);
