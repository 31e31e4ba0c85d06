-- Rows this load just inserted for patients whose current rows in this table come from a later night of
-- the same site: a delayed older night. They are kept for the record but closed at their own load
-- (valid_from_seq = valid_to_seq, so no as-of query ever sees them) and point at the newer batch
-- that outranks them.
UPDATE {{table}} AS t
SET valid_to_seq = $load_seq,
    superseded_by_batch = newer.batch_id
FROM (
    SELECT r.patient_id, max(r.batch_id) AS batch_id
    FROM {{table}} AS r
    JOIN raw.batches AS b ON b.batch_id = r.batch_id
    WHERE r.site_id = $site_id
      AND r.valid_to_seq IS NULL
      AND r.batch_id <> $batch_id
      AND b.night > CAST($night AS DATE)
    GROUP BY r.patient_id
) AS newer
WHERE t.batch_id = $batch_id
  AND t.valid_from_seq = $load_seq
  AND t.patient_id = newer.patient_id;
