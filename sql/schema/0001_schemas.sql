-- The warehouse's layers (docs/data_contract.md section 4):
--   raw       loaded rows exactly as validated, with lineage and history; batches, quarantine, summaries
--   staging   as-of table macros over raw (typed booleans, one version of each row)
--   marts     reserved for derived tables
--   analysis  the views and as-of macros the analyses read (never raw tables)
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS analysis;
