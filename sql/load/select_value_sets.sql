-- The value sets of the raw tables, read back from their CHECK (col IN (...)) constraints:
-- one row per constrained column with the allowed values as text. The validation suites'
-- expect_column_values_to_be_in_set must list the same values (a test compares them).
SELECT
    table_name,
    constraint_column_names[1] AS column_name,
    list_transform(
        string_split(regexp_extract(expression, ' IN \((.*)\)\)$', 1), ', '),
        lambda v: trim(v, '''')
    ) AS allowed
FROM duckdb_constraints()
WHERE schema_name = 'raw'
  AND table_name IN ('clinical', 'reads', 'imaging_manifest')
  AND constraint_type = 'CHECK'
  AND expression LIKE '% IN (%'
ORDER BY table_name, column_name;
