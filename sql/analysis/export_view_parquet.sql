-- One analysis set as Hive-partitioned Parquet (<path>/site_id=<site>/data_0.parquet). Rows are
-- sorted so the same warehouse gives the same files; OVERWRITE replaces an earlier export (a second
-- COPY into a non-empty folder fails without it).
-- One thread writes one file per partition, in order, so the bytes are reproducible too.
SET threads = 1;

COPY (SELECT * FROM {{view}} ORDER BY ALL)
TO $path (FORMAT parquet, PARTITION_BY (site_id), OVERWRITE);
