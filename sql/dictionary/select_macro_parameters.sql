-- The parameters of the warehouse's macros (as_of_seq, ts), for the data dictionary.
SELECT DISTINCT schema_name, function_name AS object_name, parameters
FROM duckdb_functions()
WHERE database_name = current_database() AND NOT internal
    AND function_type IN ('macro', 'table_macro')
ORDER BY ALL;
