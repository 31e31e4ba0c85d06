-- analysis.vertebrae: one row per fractured vertebra (site, patient, level). A finding is true when
-- any modality showed it (XR, CT and MR combined); genant_grade and height_loss_pct are the maxima.
CREATE OR REPLACE MACRO analysis.vertebrae_asof(as_of_seq) AS TABLE
SELECT
    site_id,
    patient_id,
    diagnosis,
    level,
    bool_or(fracture_line) AS fracture_line,
    bool_or(marrow_oedema) AS marrow_oedema,
    bool_or(soft_tissue_mass) AS soft_tissue_mass,
    bool_or(bone_destruction) AS bone_destruction,
    bool_or(posterior_wall_bulging) AS posterior_wall_bulging,
    bool_or(posterior_element_involvement) AS posterior_element_involvement,
    bool_or(wedge_shape) AS wedge_shape,
    bool_or(posterior_fat_signal) AS posterior_fat_signal,
    bool_or(intravertebral_cleft) AS intravertebral_cleft,
    bool_or(normal_disc) AS normal_disc,
    bool_or(disc_compression) AS disc_compression,
    bool_or(whole_body_collapse) AS whole_body_collapse,
    max(genant_grade) AS genant_grade,
    max(height_loss_pct) AS height_loss_pct
FROM analysis.vertebra_reads_asof(as_of_seq)
GROUP BY site_id, patient_id, diagnosis, level;

CREATE OR REPLACE VIEW analysis.vertebrae AS
SELECT * FROM analysis.vertebrae_asof(NULL);
