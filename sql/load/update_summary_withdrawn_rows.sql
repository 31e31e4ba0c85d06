-- Before their erasure, count per batch the rows of this table held for the site's withdrawn patients:
-- raw.validation_summary.withdrawn_rows keeps every batch's accounting whole (validation accepted =
-- rows the warehouse holds + rows erased for withdrawal), without keeping anything of the rows.
UPDATE raw.validation_summary AS s
SET withdrawn_rows = s.withdrawn_rows + erased.n_rows
FROM (
    SELECT t.batch_id, count(*) AS n_rows
    FROM {{table}} AS t
    WHERE t.site_id = $site_id
      AND t.patient_id IN (SELECT w.patient_id FROM raw.withdrawals AS w WHERE w.site_id = $site_id)
    GROUP BY t.batch_id
) AS erased
WHERE s.batch_id = erased.batch_id
  AND s.table_name = $table_name;
