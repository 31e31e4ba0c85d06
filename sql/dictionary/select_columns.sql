-- Every column of the warehouse's own tables and views, in table order, with its type and comment.
SELECT schema_name, table_name AS object_name, column_name, data_type, comment
FROM duckdb_columns()
WHERE database_name = current_database() AND NOT internal
    AND schema_name NOT IN ('information_schema', 'pg_catalog')
ORDER BY schema_name, table_name, column_index;
