-- Schema descriptions are rewritten from sql/dictionary.yaml after every migration.
DELETE FROM main.schema_descriptions;
