-- The rows this load closed are either earlier rows of its site that it replaced (loaded before it,
-- superseded by this batch), or its own rows arriving late (loaded by it, outranked by a batch of a
-- later night of the same site). Anything else means a batch touched rows it should not have.
WITH
    closed AS (
        SELECT 'clinical' AS table_name, site_id, patient_id, batch_id, valid_from_seq, superseded_by_batch
        FROM raw.clinical WHERE valid_to_seq = $load_seq
        UNION ALL
        SELECT 'reads', site_id, patient_id, batch_id, valid_from_seq, superseded_by_batch
        FROM raw.reads WHERE valid_to_seq = $load_seq
        UNION ALL
        SELECT 'imaging_manifest', site_id, patient_id, batch_id, valid_from_seq, superseded_by_batch
        FROM raw.imaging_manifest WHERE valid_to_seq = $load_seq
    ),
    this_night AS (SELECT night FROM raw.batches WHERE batch_id = $batch_id)
SELECT c.table_name, c.site_id, c.patient_id, c.valid_from_seq, c.superseded_by_batch
FROM closed AS c
LEFT JOIN raw.batches AS newer ON newer.batch_id = c.superseded_by_batch
WHERE c.site_id <> $site_id
   OR NOT (
       (c.valid_from_seq < $load_seq AND c.superseded_by_batch = $batch_id)
       OR (
           c.valid_from_seq = $load_seq AND c.batch_id = $batch_id
           AND newer.site_id = $site_id AND newer.night > (SELECT night FROM this_night)
       )
   )
LIMIT 20;
