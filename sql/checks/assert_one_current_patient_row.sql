-- After the load, a site's patient has at most one current clinical row (analysis.patients is one
-- row per patient).
SELECT site_id, patient_id, count(*) AS current_rows
FROM raw.clinical
WHERE site_id = $site_id AND valid_to_seq IS NULL
GROUP BY site_id, patient_id
HAVING count(*) > 1
LIMIT 20;
