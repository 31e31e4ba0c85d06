-- Erase every row of the site's withdrawn patients from this table: current rows and history alike
-- (as-of queries of earlier loads no longer show them either). Only raw.withdrawals remembers them.
DELETE FROM {{table}}
WHERE site_id = $site_id
  AND patient_id IN (SELECT w.patient_id FROM raw.withdrawals AS w WHERE w.site_id = $site_id);
