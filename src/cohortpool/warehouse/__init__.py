"""The hub's DuckDB warehouse: migrations, transactional idempotent loads, lineage, history, views.

Public API (other stages use these names):

- :func:`connect` (``db_path, read_only=False``): open the file, with a clear error when it is locked.
- :mod:`cohortpool.warehouse.sql`: ``load_sql(name)``, ``run_sql(con, name, **params)``,
  ``query_df(con, name, **params)``; the only reader of ``sql/``.
- :func:`migrate` (``con``): apply ``sql/schema/`` migrations and refresh the analysis views.
- :func:`load_batch` (``db_path, validated_dir``) -> :class:`LoadResult`.
- :func:`export_parquet` (``db_path, out_dir``) and :func:`checksum` (``db_path``).
"""

from __future__ import annotations

from cohortpool.warehouse import sql
from cohortpool.warehouse.batch import BatchError
from cohortpool.warehouse.connect import WarehouseError, WarehouseLockedError, WarehouseMissingError, connect
from cohortpool.warehouse.export import ANALYSIS_VIEWS, checksum, export_parquet
from cohortpool.warehouse.load import BatchConflictError, LoadError, LoadResult, load_batch
from cohortpool.warehouse.migrate import MigrationError, migrate

__all__ = [
    "ANALYSIS_VIEWS",
    "BatchConflictError",
    "BatchError",
    "LoadError",
    "LoadResult",
    "MigrationError",
    "WarehouseError",
    "WarehouseLockedError",
    "WarehouseMissingError",
    "checksum",
    "connect",
    "export_parquet",
    "load_batch",
    "migrate",
    "sql",
]
