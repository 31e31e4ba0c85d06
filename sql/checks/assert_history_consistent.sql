-- The rows this load closed were loaded earlier, are closed by this batch, and belong to its site
-- (a batch never supersedes another site's rows).
SELECT 'clinical' AS table_name, site_id, patient_id, valid_from_seq, superseded_by_batch
FROM raw.clinical
WHERE valid_to_seq = $load_seq
  AND (valid_from_seq >= $load_seq OR superseded_by_batch IS DISTINCT FROM $batch_id OR site_id <> $site_id)
UNION ALL
SELECT 'reads', site_id, patient_id, valid_from_seq, superseded_by_batch
FROM raw.reads
WHERE valid_to_seq = $load_seq
  AND (valid_from_seq >= $load_seq OR superseded_by_batch IS DISTINCT FROM $batch_id OR site_id <> $site_id)
UNION ALL
SELECT 'imaging_manifest', site_id, patient_id, valid_from_seq, superseded_by_batch
FROM raw.imaging_manifest
WHERE valid_to_seq = $load_seq
  AND (valid_from_seq >= $load_seq OR superseded_by_batch IS DISTINCT FROM $batch_id OR site_id <> $site_id)
LIMIT 20;
