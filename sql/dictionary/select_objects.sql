-- The warehouse's own tables, views and macros (not DuckDB's), with the SQL that defines each view or
-- macro (the data dictionary reads lineage from it) and the comment the dictionary gave it.
WITH objects AS (
    SELECT schema_name, table_name AS object_name, 'table' AS kind, NULL AS definition, comment
    FROM duckdb_tables()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary
    UNION ALL
    SELECT schema_name, view_name, 'view', sql, comment
    FROM duckdb_views()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary
    UNION ALL
    SELECT DISTINCT schema_name, function_name,
        CASE function_type WHEN 'table_macro' THEN 'table macro' ELSE 'macro' END,
        macro_definition, comment
    FROM duckdb_functions()
    WHERE database_name = current_database() AND NOT internal
        AND function_type IN ('macro', 'table_macro')
)
SELECT schema_name, object_name, kind, definition, comment
FROM objects
WHERE schema_name NOT IN ('information_schema', 'pg_catalog')
ORDER BY schema_name, object_name;
