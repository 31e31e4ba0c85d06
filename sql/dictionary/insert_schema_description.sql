INSERT INTO main.schema_descriptions (schema_name, description) VALUES ($schema_name, $description);
