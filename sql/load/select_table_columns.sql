-- The submission columns a raw table stores, in order: its columns minus lineage and history.
-- Read from the catalogue so the migrations remain the one definition of the tables.
SELECT column_name
FROM information_schema.columns
WHERE table_schema = 'raw'
  AND table_name = $table_name
  AND column_name NOT IN (
      'batch_id', 'source_file', 'source_sha256', 'source_row',
      'loaded_at', 'valid_from_seq', 'valid_to_seq', 'superseded_by_batch'
  )
ORDER BY ordinal_position;
