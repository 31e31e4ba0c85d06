-- Every row this load inserted carries the batch's own batch_id and site_id (lineage is not
-- trusted blindly from the Parquet files).
SELECT 'clinical' AS table_name, source_row, site_id, batch_id
FROM raw.clinical
WHERE valid_from_seq = $load_seq AND (batch_id <> $batch_id OR site_id <> $site_id)
UNION ALL
SELECT 'reads', source_row, site_id, batch_id
FROM raw.reads
WHERE valid_from_seq = $load_seq AND (batch_id <> $batch_id OR site_id <> $site_id)
UNION ALL
SELECT 'imaging_manifest', source_row, site_id, batch_id
FROM raw.imaging_manifest
WHERE valid_from_seq = $load_seq AND (batch_id <> $batch_id OR site_id <> $site_id)
LIMIT 20;
