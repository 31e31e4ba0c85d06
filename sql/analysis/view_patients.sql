-- analysis.patients: one row per current patient. n_vertebrae counts the distinct fractured levels
-- read on any modality; osteoporosis follows the WHO definition (DXA T-score <= -2.5).
CREATE OR REPLACE MACRO analysis.patients_asof(as_of_seq) AS TABLE
WITH levels AS (
    SELECT site_id, patient_id, count(DISTINCT level) AS n_vertebrae
    FROM analysis.vertebra_reads_asof(as_of_seq)
    GROUP BY site_id, patient_id
)
SELECT
    p.site_id,
    p.patient_id,
    p.diagnosis,
    p.age_years,
    p.sex,
    p.bmi,
    p.height_cm,
    p.weight_kg,
    p.dxa_t_score,
    p.dxa_t_score <= -2.5 AS osteoporosis,
    p.pathology_confirmed,
    p.primary_tumour,
    coalesce(l.n_vertebrae, 0) AS n_vertebrae,
    p.batch_id
FROM staging.clinical_asof(as_of_seq) AS p
LEFT JOIN levels AS l
    ON l.site_id = p.site_id AND l.patient_id = p.patient_id;

CREATE OR REPLACE VIEW analysis.patients AS
SELECT * FROM analysis.patients_asof(NULL);
