-- The warehouse's schemas with their descriptions (NULL where sql/dictionary.yaml has none).
SELECT s.schema_name, d.description
FROM duckdb_schemas() AS s
LEFT JOIN main.schema_descriptions AS d ON d.schema_name = s.schema_name
WHERE s.database_name = current_database()
    AND s.schema_name NOT IN ('information_schema', 'pg_catalog')
ORDER BY s.schema_name;
