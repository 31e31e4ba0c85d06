-- Lineage that is present but meaningless: a source_row below 1, an empty source file, or a
-- source checksum that is not 64 hex digits. (NULLs are refused by NOT NULL constraints already.)
SELECT 'clinical' AS table_name, source_row, source_file, source_sha256
FROM raw.clinical
WHERE valid_from_seq = $load_seq
  AND (source_row < 1 OR source_file = '' OR NOT regexp_full_match(source_sha256, '[0-9a-f]{64}'))
UNION ALL
SELECT 'reads', source_row, source_file, source_sha256
FROM raw.reads
WHERE valid_from_seq = $load_seq
  AND (source_row < 1 OR source_file = '' OR NOT regexp_full_match(source_sha256, '[0-9a-f]{64}'))
UNION ALL
SELECT 'imaging_manifest', source_row, source_file, source_sha256
FROM raw.imaging_manifest
WHERE valid_from_seq = $load_seq
  AND (source_row < 1 OR source_file = '' OR NOT regexp_full_match(source_sha256, '[0-9a-f]{64}'))
LIMIT 20;
