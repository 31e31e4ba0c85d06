-- Current reads and series of this site whose patient has no current clinical row (e.g. the clinical
-- row was quarantined): they stay in raw.* but cannot enter the analysis views (no diagnosis).
SELECT 'reads' AS table_name, r.patient_id, r.batch_id, r.source_row
FROM raw.reads AS r
WHERE r.site_id = $site_id AND r.valid_to_seq IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM raw.clinical AS c
      WHERE c.site_id = r.site_id AND c.patient_id = r.patient_id AND c.valid_to_seq IS NULL
  )
UNION ALL
SELECT 'imaging_manifest', m.patient_id, m.batch_id, m.source_row
FROM raw.imaging_manifest AS m
WHERE m.site_id = $site_id AND m.valid_to_seq IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM raw.clinical AS c
      WHERE c.site_id = m.site_id AND c.patient_id = m.patient_id AND c.valid_to_seq IS NULL
  );
