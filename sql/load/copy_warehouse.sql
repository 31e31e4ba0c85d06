-- Write the whole warehouse (tables with their constraints and comments, views, macros, rows) into a
-- fresh file. DuckDB's DELETE hides rows from every query but may leave their bytes in the file's
-- blocks until they are reused; a fresh copy holds the live rows only. Used after a load that erased
-- rows for withdrawn patients (cohortpool.warehouse.compact).
ATTACH $target AS compacted;
COPY FROM DATABASE erased_from TO compacted;
DETACH compacted;
