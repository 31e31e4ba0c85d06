-- Why a Parquet file of a validated batch failed to load: its cells that break the raw table's type,
-- NOT NULL or value set, first rows first (values are not returned: they may be quasi-identifiers).
-- Runs only after a failed insert (it reads every cell).
WITH
    cells AS (
        SELECT src, column_name, val
        FROM (
            SELECT
                TRY_CAST(source_row AS INTEGER) AS src,
                CAST(COLUMNS(* EXCLUDE (source_row)) AS VARCHAR)
            FROM read_parquet($path)
        ) UNPIVOT INCLUDE NULLS (val FOR column_name IN (COLUMNS(* EXCLUDE (src))))
    ),
    types AS (
        SELECT column_name, data_type, is_nullable = 'NO' AS required
        FROM information_schema.columns
        WHERE table_schema = 'raw' AND table_name = $table_name
    ),
    value_sets AS (
        SELECT
            constraint_column_names[1] AS column_name,
            list_transform(
                string_split(regexp_extract(expression, ' IN \((.*)\)\)$', 1), ', '),
                lambda v: trim(v, '''')
            ) AS allowed
        FROM duckdb_constraints()
        WHERE schema_name = 'raw' AND table_name = $table_name
          AND constraint_type = 'CHECK' AND expression LIKE '% IN (%'
    )
SELECT
    c.src AS source_row,
    c.column_name,
    CASE
        WHEN c.val IS NULL THEN 'is empty but required'
        WHEN s.allowed IS NOT NULL AND NOT list_contains(s.allowed, c.val)
            THEN 'is not one of ' || array_to_string(s.allowed, ', ')
        ELSE 'is not a valid ' || t.data_type
    END AS problem
FROM cells AS c
JOIN types AS t USING (column_name)
LEFT JOIN value_sets AS s USING (column_name)
WHERE (c.val IS NULL AND t.required)
   OR (c.val IS NOT NULL AND s.allowed IS NOT NULL AND NOT list_contains(s.allowed, c.val))
   OR (c.val IS NOT NULL AND CASE t.data_type
        WHEN 'INTEGER' THEN TRY_CAST(c.val AS INTEGER) IS NULL
                        AND TRY_CAST(TRY_CAST(c.val AS DOUBLE) AS INTEGER) IS NULL
        WHEN 'DOUBLE' THEN TRY_CAST(c.val AS DOUBLE) IS NULL
        WHEN 'DATE' THEN TRY_CAST(c.val AS DATE) IS NULL
        ELSE false
    END)
ORDER BY c.src, c.column_name
LIMIT 5;
