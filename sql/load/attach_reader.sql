-- A reader's connection (cohortpool.warehouse.open_reader): the warehouse file attached read-only to a
-- fresh in-memory database and made the default catalog, so `analysis.patients` needs no prefix.
ATTACH $path AS warehouse (READ_ONLY);
USE warehouse;
