-- Content checksum of one analysis set as of a load (NULL = now). Each row's text is hashed (sha256)
-- and the hashes are summed as two 64-bit halves: a sum does not depend on row order or file layout,
-- counts duplicates, and needs no sort or giant string (findings_long has 12 rows per read).
SELECT
    count(*) AS n_rows,
    coalesce(sum(('0x' || substr(row_sha256, 1, 16))::UBIGINT::HUGEINT), 0) AS sum_high,
    coalesce(sum(('0x' || substr(row_sha256, 17, 16))::UBIGINT::HUGEINT), 0) AS sum_low
FROM (
    SELECT sha256(CAST(t AS VARCHAR)) AS row_sha256
    FROM {{view}}($as_of_seq) AS t
);
