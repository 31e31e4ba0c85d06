-- Write every committed change into the database file itself (none left only in the WAL): a
-- published copy of the file alone is then complete.
CHECKPOINT;
