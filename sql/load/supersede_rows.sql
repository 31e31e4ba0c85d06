-- A site's resubmission replaces that site's current rows for the patients it carries in this table;
-- the old rows stay, closed at this load (valid_to_seq) and pointing at the batch that replaced them.
-- Only rows of the same or an earlier night are replaced: nights are ordered by the night they
-- describe, not by when they arrived, so a delayed older night never overwrites a newer one
-- (load/close_late_rows.sql closes its rows instead).
UPDATE {{table}}
SET valid_to_seq = $load_seq,
    superseded_by_batch = $batch_id
WHERE site_id = $site_id
  AND valid_to_seq IS NULL
  AND patient_id IN (SELECT DISTINCT patient_id FROM read_parquet($path))
  AND batch_id IN (SELECT batch_id FROM raw.batches WHERE site_id = $site_id AND night <= CAST($night AS DATE));
