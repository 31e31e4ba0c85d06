SELECT version, name, sha256 FROM main.schema_migrations ORDER BY version;
