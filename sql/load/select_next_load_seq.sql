-- Loads are numbered 1, 2, ... in the order they committed (one writer at a time).
SELECT coalesce(max(load_seq), 0) + 1 FROM raw.batches;
