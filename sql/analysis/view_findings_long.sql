-- analysis.findings_long: one row per vertebra, modality and finding; modality 'ALL' is the three
-- combined (analysis.vertebrae). NULL findings are kept (INCLUDE NULLS) so every vertebra has all 12.
CREATE OR REPLACE MACRO analysis.findings_long_asof(as_of_seq) AS TABLE
SELECT site_id, patient_id, diagnosis, level, modality, finding, present
FROM (
    SELECT
        site_id, patient_id, diagnosis, level, modality,
        fracture_line, marrow_oedema, soft_tissue_mass, bone_destruction,
        posterior_wall_bulging, posterior_element_involvement, wedge_shape,
        posterior_fat_signal, intravertebral_cleft, normal_disc, disc_compression,
        whole_body_collapse
    FROM analysis.vertebra_reads_asof(as_of_seq)
    UNION ALL
    SELECT
        site_id, patient_id, diagnosis, level, 'ALL' AS modality,
        fracture_line, marrow_oedema, soft_tissue_mass, bone_destruction,
        posterior_wall_bulging, posterior_element_involvement, wedge_shape,
        posterior_fat_signal, intravertebral_cleft, normal_disc, disc_compression,
        whole_body_collapse
    FROM analysis.vertebrae_asof(as_of_seq)
) UNPIVOT INCLUDE NULLS (
    present FOR finding IN (
        fracture_line, marrow_oedema, soft_tissue_mass, bone_destruction,
        posterior_wall_bulging, posterior_element_involvement, wedge_shape,
        posterior_fat_signal, intravertebral_cleft, normal_disc, disc_compression,
        whole_body_collapse
    )
);

CREATE OR REPLACE VIEW analysis.findings_long AS
SELECT * FROM analysis.findings_long_asof(NULL);
