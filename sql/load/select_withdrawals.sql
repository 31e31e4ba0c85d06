-- Every site's withdrawn patients (pseudonyms), for the hub's run-wide erasure of their values from its
-- files (refused arrivals and sites that loaded nothing this run included).
SELECT site_id, patient_id
FROM raw.withdrawals
ORDER BY site_id, patient_id;
