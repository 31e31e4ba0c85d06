-- Lineage that is present but meaningless: a source_row below 1, an empty source file, or a
-- source checksum that is not 64 hex digits. (NULLs are refused by NOT NULL constraints already.)
-- A batch has one source file and checksum per table, so the text tests run on the distinct pairs.
WITH
    loaded AS (
        SELECT 'clinical' AS table_name, source_file, source_sha256, min(source_row) AS first_row
        FROM raw.clinical WHERE valid_from_seq = $load_seq GROUP BY ALL
        UNION ALL
        SELECT 'reads', source_file, source_sha256, min(source_row)
        FROM raw.reads WHERE valid_from_seq = $load_seq GROUP BY ALL
        UNION ALL
        SELECT 'imaging_manifest', source_file, source_sha256, min(source_row)
        FROM raw.imaging_manifest WHERE valid_from_seq = $load_seq GROUP BY ALL
    )
SELECT table_name, source_file, source_sha256, first_row
FROM loaded
WHERE first_row < 1 OR source_file = '' OR NOT regexp_full_match(source_sha256, '[0-9a-f]{64}')
LIMIT 20;
