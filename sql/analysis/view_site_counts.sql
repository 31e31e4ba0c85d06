-- analysis.site_counts: per site and diagnosis group, the current patients, fractured vertebrae,
-- reads and imaging series (manifest rows of the group's patients).
CREATE OR REPLACE MACRO analysis.site_counts_asof(as_of_seq) AS TABLE
WITH
    p AS (
        SELECT site_id, diagnosis, count(*) AS patients
        FROM analysis.patients_asof(as_of_seq)
        GROUP BY ALL
    ),
    v AS (
        SELECT site_id, diagnosis, count(*) AS vertebrae
        FROM analysis.vertebrae_asof(as_of_seq)
        GROUP BY ALL
    ),
    r AS (
        SELECT site_id, diagnosis, count(*) AS reads
        FROM analysis.vertebra_reads_asof(as_of_seq)
        GROUP BY ALL
    ),
    s AS (
        SELECT c.site_id, c.diagnosis, count(*) AS series
        FROM staging.imaging_manifest_asof(as_of_seq) AS m
        JOIN staging.clinical_asof(as_of_seq) AS c
            ON c.site_id = m.site_id AND c.patient_id = m.patient_id
        GROUP BY ALL
    )
SELECT
    p.site_id,
    p.diagnosis,
    p.patients,
    coalesce(v.vertebrae, 0) AS vertebrae,
    coalesce(r.reads, 0) AS reads,
    coalesce(s.series, 0) AS series
FROM p
LEFT JOIN v ON v.site_id = p.site_id AND v.diagnosis IS NOT DISTINCT FROM p.diagnosis
LEFT JOIN r ON r.site_id = p.site_id AND r.diagnosis IS NOT DISTINCT FROM p.diagnosis
LEFT JOIN s ON s.site_id = p.site_id AND s.diagnosis IS NOT DISTINCT FROM p.diagnosis;

CREATE OR REPLACE VIEW analysis.site_counts AS
SELECT * FROM analysis.site_counts_asof(NULL);
