INSERT INTO main.schema_migrations (version, name, sha256, applied_at)
VALUES ($version, $name, $sha256, $applied_at);
