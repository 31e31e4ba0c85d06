-- The site's withdrawn patients (pseudonyms, sorted): after a load, the hub erases their values from its
-- file stores too (submissions, validated batches, rejected arrivals).
SELECT patient_id
FROM raw.withdrawals
WHERE site_id = $site_id
ORDER BY patient_id;
