-- After the load, no row of the site's withdrawn patients is left in any table of loaded rows or in
-- the quarantine and warning lines: a withdrawal erases the patient's values from history too, and no
-- later batch brings them back. Rows mean failure (the load is rolled back).
WITH
    withdrawn AS (SELECT patient_id FROM raw.withdrawals WHERE site_id = $site_id),
    left_over AS (
        SELECT 'clinical' AS table_name, patient_id, batch_id FROM raw.clinical
        WHERE site_id = $site_id AND patient_id IN (SELECT patient_id FROM withdrawn)
        UNION ALL
        SELECT 'reads', patient_id, batch_id FROM raw.reads
        WHERE site_id = $site_id AND patient_id IN (SELECT patient_id FROM withdrawn)
        UNION ALL
        SELECT 'imaging_manifest', patient_id, batch_id FROM raw.imaging_manifest
        WHERE site_id = $site_id AND patient_id IN (SELECT patient_id FROM withdrawn)
        UNION ALL
        SELECT 'quarantine', w.patient_id, q.batch_id FROM raw.quarantine AS q
        JOIN withdrawn AS w ON contains(coalesce(q.key, ''), w.patient_id)
        WHERE q.site_id = $site_id
        UNION ALL
        SELECT 'validation_warnings', w.patient_id, v.batch_id FROM raw.validation_warnings AS v
        JOIN withdrawn AS w ON contains(coalesce(v.key, ''), w.patient_id)
        WHERE v.site_id = $site_id
    )
SELECT table_name, batch_id, count(*) AS rows_left
FROM left_over
GROUP BY table_name, batch_id
LIMIT 20;
