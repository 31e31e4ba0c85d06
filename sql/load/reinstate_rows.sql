-- A re-delivered night gives back what its earlier deliveries had replaced and it no longer carries.
-- Nights are incremental: a night replaces earlier nights' rows of the patients it carries. When an
-- earlier delivery of this night carried a patient (closing their earlier-night rows) and the
-- re-delivery does not, the earlier night speaks for that patient again, as it would had the
-- re-delivery come first. Those rows come back as copies, current from this load, with their own
-- lineage (batch, source file and row), of their latest version only; the closed originals stay as
-- history. Only when nothing of this site is current for the patient in this table (a newer night's
-- rows always outrank them).
INSERT INTO {{table}}
SELECT * EXCLUDE (last_closed) REPLACE (
    $load_seq AS valid_from_seq, NULL AS valid_to_seq, NULL AS superseded_by_batch
)
FROM (
    SELECT r.*, max(r.valid_to_seq) OVER (PARTITION BY r.patient_id) AS last_closed
    FROM {{table}} AS r
    WHERE r.site_id = $site_id
      -- closed by an earlier delivery of this night
      AND r.superseded_by_batch IN (
          SELECT b.batch_id FROM raw.batches AS b
          WHERE b.site_id = $site_id AND b.night = CAST($night AS DATE) AND b.batch_id <> $batch_id
      )
      -- once current (a late row never was) and from an earlier night
      AND r.valid_from_seq < r.valid_to_seq
      AND r.batch_id IN (
          SELECT b.batch_id FROM raw.batches AS b WHERE b.site_id = $site_id AND b.night < CAST($night AS DATE)
      )
) AS closed
-- the patient's latest version (a copy reinstated before and closed again outranks its original)
WHERE closed.valid_to_seq = closed.last_closed
  AND closed.patient_id NOT IN (
      SELECT c.patient_id FROM {{table}} AS c WHERE c.site_id = $site_id AND c.valid_to_seq IS NULL
  );
