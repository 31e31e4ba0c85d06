-- What the site's de-identification did with the night's DICOM files (submission.json "counts"),
-- recorded per batch so the report's data-quality section can show files held back at the site
-- beside the rows validation quarantined at the hub. NULL when the load was not given the submission.
ALTER TABLE raw.batches ADD COLUMN deid_input_files INTEGER;
ALTER TABLE raw.batches ADD COLUMN deid_deidentified INTEGER;
ALTER TABLE raw.batches ADD COLUMN deid_quarantined INTEGER;
ALTER TABLE raw.batches ADD COLUMN deid_duplicates INTEGER;

-- The marts schema was created empty "for derived tables" and never used: an empty schema in every
-- analyst's catalogue only invites the question of what is missing. Derived tables get a schema with
-- a migration when one exists. (DROP SCHEMA fails if anything was put there, so nothing is lost.)
DROP SCHEMA marts;

-- DuckDB has no COMMENT ON SCHEMA, so the schemas' descriptions live in a table of their own, filled
-- from sql/dictionary.yaml after every migration together with the COMMENTs on everything else.
CREATE TABLE main.schema_descriptions (
    schema_name  VARCHAR PRIMARY KEY,
    description  VARCHAR NOT NULL
);
