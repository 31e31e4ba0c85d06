-- Erase the quarantine or warning lines about the site's withdrawn patients: a line names its row's key
-- (which holds the patient's pseudonym) and may quote a value of theirs. A line whose key or value
-- carries the pseudonym goes.
DELETE FROM {{table}} AS q
WHERE q.site_id = $site_id
  AND EXISTS (
      SELECT 1
      FROM raw.withdrawals AS w
      WHERE w.site_id = $site_id
        AND (contains(coalesce(q.key, ''), w.patient_id) OR contains(coalesce(q.value, ''), w.patient_id))
  );
