-- Nothing lost between validation and the warehouse: each table loaded exactly the number of rows
-- summary.json says validation accepted, but for the rows erased because their patient withdrew
-- (raw.validation_summary.withdrawn_rows). Rows of earlier batches this load reinstated are not its own.
WITH loaded AS (
    SELECT 'clinical' AS table_name, count(*) AS loaded FROM raw.clinical WHERE valid_from_seq = $load_seq AND batch_id = $batch_id
    UNION ALL
    SELECT 'reads', count(*) FROM raw.reads WHERE valid_from_seq = $load_seq AND batch_id = $batch_id
    UNION ALL
    SELECT 'imaging_manifest', count(*) FROM raw.imaging_manifest WHERE valid_from_seq = $load_seq AND batch_id = $batch_id
)
SELECT s.table_name, s.accepted, l.loaded, s.withdrawn_rows
FROM raw.validation_summary AS s
JOIN loaded AS l USING (table_name)
WHERE s.batch_id = $batch_id AND s.accepted <> l.loaded + s.withdrawn_rows;
