-- analysis.batches: what was loaded when (for provenance: a report records the load_seq it read,
-- and analysis.<view>_asof(load_seq) reproduces it). analysis.load_seq_at(ts) is the last load
-- finished at or before a timestamp, e.g. analysis.patients_asof(analysis.load_seq_at(TIMESTAMPTZ '2026-10-31 23:59:59+00')).
CREATE OR REPLACE VIEW analysis.batches AS
SELECT
    load_seq,
    batch_id,
    site_id,
    night,
    loaded_at,
    validation_outcome,
    clinical_rows,
    reads_rows,
    imaging_manifest_rows,
    quarantined_rows,
    warning_rows,
    superseded_rows,
    late_rows,
    reinstated_rows,
    withdrawn_patients,
    erased_rows,
    content_sha256
FROM raw.batches;

CREATE OR REPLACE MACRO analysis.load_seq_at(ts) AS (
    SELECT coalesce(max(load_seq), 0) FROM raw.batches WHERE loaded_at <= ts
);
