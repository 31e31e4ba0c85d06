-- Content checksum of one analysis set as of a load (NULL = now): the sha256 of the sorted sha256s
-- of its rows' text, so it depends on the rows and values only, not on row order or file layout.
SELECT
    count(*) AS n_rows,
    coalesce(sha256(string_agg(row_sha256, '' ORDER BY row_sha256)), '') AS digest
FROM (
    SELECT sha256(CAST(t AS VARCHAR)) AS row_sha256
    FROM {{view}}($as_of_seq) AS t
);
