-- A source row of a submission file is loaded at most once per batch (a load's reinstated copies of
-- earlier batches' rows count under their own batch).
SELECT 'clinical' AS table_name, batch_id, source_file, source_row, count(*) AS copies
FROM raw.clinical WHERE valid_from_seq = $load_seq
GROUP BY batch_id, source_file, source_row HAVING count(*) > 1
UNION ALL
SELECT 'reads', batch_id, source_file, source_row, count(*)
FROM raw.reads WHERE valid_from_seq = $load_seq
GROUP BY batch_id, source_file, source_row HAVING count(*) > 1
UNION ALL
SELECT 'imaging_manifest', batch_id, source_file, source_row, count(*)
FROM raw.imaging_manifest WHERE valid_from_seq = $load_seq
GROUP BY batch_id, source_file, source_row HAVING count(*) > 1
LIMIT 20;
