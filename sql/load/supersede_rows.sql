-- A site's resubmission replaces, in this table, that site's current rows
--   * of the night it describes, whole: a re-delivered night (same site and night, new content) closes
--     every current row of the earlier delivery, so a patient, read or series missing from the
--     re-delivery is no longer current;
--   * of earlier nights, for the patients it carries (a later night updates the patients it names).
-- The old rows stay, closed at this load (valid_to_seq) and pointing at the batch that replaced them.
-- Rows of later nights are never replaced: nights are ordered by the night they describe, not by when
-- they arrived, so a delayed older night never overwrites a newer one (load/close_late_rows.sql
-- closes its rows instead).
UPDATE {{table}}
SET valid_to_seq = $load_seq,
    superseded_by_batch = $batch_id
WHERE site_id = $site_id
  AND valid_to_seq IS NULL
  AND (
      batch_id IN (SELECT batch_id FROM raw.batches WHERE site_id = $site_id AND night = CAST($night AS DATE))
      OR (
          patient_id IN (SELECT DISTINCT patient_id FROM read_parquet($path))
          AND batch_id IN (SELECT batch_id FROM raw.batches WHERE site_id = $site_id AND night < CAST($night AS DATE))
      )
  );
