-- The batch's withdrawn.csv (site_id, patient_id, checked by validation) into raw.withdrawals: the
-- pseudonym, site, night and batch, nothing else. A patient already withdrawn keeps one row, that of the
-- earliest night listing them, so the table does not depend on the order nights arrive in.
INSERT INTO raw.withdrawals (site_id, patient_id, night, batch_id)
SELECT DISTINCT
    site_id,
    patient_id,
    CAST($night AS DATE),
    $batch_id
FROM read_csv($path, header = true, columns = {'site_id': 'VARCHAR', 'patient_id': 'VARCHAR'})
-- the pseudonyms are keyed by site: a withdrawal speaks only for the site that sent it
WHERE site_id = $site_id
ON CONFLICT (site_id, patient_id) DO UPDATE
SET night = excluded.night, batch_id = excluded.batch_id
WHERE excluded.night < raw.withdrawals.night;
