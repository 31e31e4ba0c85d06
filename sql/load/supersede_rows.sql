-- A site's resubmission replaces that site's current rows for the patients it carries in this table;
-- the old rows stay, closed at this load (valid_to_seq) and pointing at the batch that replaced them.
UPDATE {{table}}
SET valid_to_seq = $load_seq,
    superseded_by_batch = $batch_id
WHERE site_id = $site_id
  AND valid_to_seq IS NULL
  AND patient_id IN (SELECT DISTINCT patient_id FROM read_parquet($path));
