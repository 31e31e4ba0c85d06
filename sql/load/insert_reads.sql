-- Bulk insert of accepted/reads.parquet, cast to the contract's types.
INSERT INTO raw.reads (
    site_id, patient_id, accession_id, modality, level,
    fracture_line, marrow_oedema, soft_tissue_mass, bone_destruction, posterior_wall_bulging,
    posterior_element_involvement, wedge_shape, posterior_fat_signal, intravertebral_cleft,
    normal_disc, disc_compression, whole_body_collapse, genant_grade, height_loss_pct,
    source_row, batch_id, source_file, source_sha256, loaded_at, valid_from_seq
)
SELECT
    CAST(site_id AS VARCHAR),
    CAST(patient_id AS VARCHAR),
    CAST(accession_id AS VARCHAR),
    CAST(modality AS VARCHAR),
    CAST(level AS VARCHAR),
    CAST(fracture_line AS VARCHAR),
    CAST(marrow_oedema AS VARCHAR),
    CAST(soft_tissue_mass AS VARCHAR),
    CAST(bone_destruction AS VARCHAR),
    CAST(posterior_wall_bulging AS VARCHAR),
    CAST(posterior_element_involvement AS VARCHAR),
    CAST(wedge_shape AS VARCHAR),
    CAST(posterior_fat_signal AS VARCHAR),
    CAST(intravertebral_cleft AS VARCHAR),
    CAST(normal_disc AS VARCHAR),
    CAST(disc_compression AS VARCHAR),
    CAST(whole_body_collapse AS VARCHAR),
    CAST(genant_grade AS INTEGER),
    CAST(height_loss_pct AS DOUBLE),
    CAST(source_row AS INTEGER),
    CAST(batch_id AS VARCHAR),
    CAST(source_file AS VARCHAR),
    CAST(source_sha256 AS VARCHAR),
    $loaded_at,
    $load_seq
FROM read_parquet($path);
