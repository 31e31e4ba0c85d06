-- The warehouse attached read-write under a fixed name to a fresh in-memory connection, so rewriting it
-- (load/copy_warehouse.sql) needs no interpolated catalog name and holds the file's writer lock throughout.
ATTACH $path AS erased_from;
