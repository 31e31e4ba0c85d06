-- Every row this load made current carries the batch's own batch_id and site_id (lineage is not
-- trusted blindly from the Parquet files), or is a reinstated copy (load/reinstate_rows.sql): a row of
-- the same site whose closed original, same batch and source row, was loaded before.
WITH
    made_current AS (
        SELECT 'clinical' AS table_name, source_file, source_row, site_id, batch_id
        FROM raw.clinical WHERE valid_from_seq = $load_seq
        UNION ALL
        SELECT 'reads', source_file, source_row, site_id, batch_id
        FROM raw.reads WHERE valid_from_seq = $load_seq
        UNION ALL
        SELECT 'imaging_manifest', source_file, source_row, site_id, batch_id
        FROM raw.imaging_manifest WHERE valid_from_seq = $load_seq
    ),
    originals AS (
        SELECT 'clinical' AS table_name, source_file, source_row, batch_id
        FROM raw.clinical WHERE site_id = $site_id AND valid_from_seq < $load_seq AND valid_to_seq IS NOT NULL
        UNION ALL
        SELECT 'reads', source_file, source_row, batch_id
        FROM raw.reads WHERE site_id = $site_id AND valid_from_seq < $load_seq AND valid_to_seq IS NOT NULL
        UNION ALL
        SELECT 'imaging_manifest', source_file, source_row, batch_id
        FROM raw.imaging_manifest
        WHERE site_id = $site_id AND valid_from_seq < $load_seq AND valid_to_seq IS NOT NULL
    )
SELECT m.table_name, m.source_row, m.site_id, m.batch_id
FROM made_current AS m
WHERE m.site_id <> $site_id
   OR (
       m.batch_id <> $batch_id
       AND NOT EXISTS (
           SELECT 1 FROM originals AS o
           WHERE o.table_name = m.table_name AND o.batch_id = m.batch_id
             AND o.source_file = m.source_file AND o.source_row = m.source_row
       )
   )
LIMIT 20;
