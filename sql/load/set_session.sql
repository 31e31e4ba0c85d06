-- Every warehouse connection: no terminal progress bar (DuckDB draws one for queries over 2 s, which
-- would garble the CLI's output and logs).
SET enable_progress_bar = false;
