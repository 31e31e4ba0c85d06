"""The hub's DuckDB warehouse: migrations, transactional idempotent loads, lineage, history, views.

Public API (other stages use these names):

- :func:`connect` (``db_path, read_only=False``): open the file, with a clear error when it is locked.
- :func:`open_reader` (``db_path``): the one way readers open a warehouse (read-only, a fresh snapshot).
- :mod:`cohortpool.warehouse.sql`: ``load_sql(name)``, ``run_sql(con, name, **params)``,
  ``query_df(con, name, **params)``; the only reader of ``sql/``.
- :func:`migrate` (``con``): apply ``sql/schema/`` migrations, refresh the analysis views, comment all.
- :func:`load_batch` (``db_path, validated_dir, submission_dir=None``) -> :class:`LoadResult`.
- :func:`publish` (``db_path, published=None``) -> :class:`PublishResult`: the read-only copy analysts and
  the report read (``published/warehouse.duckdb`` beside the warehouse, :func:`published_path`);
  :func:`is_published` (``db_path``): whether that copy holds the warehouse's last load.
- :func:`export_parquet` (``db_path, out_dir``) and :func:`checksum` (``db_path``).
- :func:`withdrawn_by_site` (``db_path``): every site's withdrawn patients, whose values the hub erases
  from its files too.
- :func:`write_dictionary_html` (``con, path``) / :func:`write_dictionary_page` (``db_path, path``): the
  data dictionary page (a report folder gets one beside ``report.html``, which links it).
"""

from __future__ import annotations

from cohortpool.warehouse import sql
from cohortpool.warehouse.batch import BatchError
from cohortpool.warehouse.connect import (
    WarehouseError,
    WarehouseLockedError,
    WarehouseMissingError,
    connect,
    open_reader,
)
from cohortpool.warehouse.dictionary import DictionaryError, write_dictionary_html, write_dictionary_page
from cohortpool.warehouse.export import ANALYSIS_VIEWS, checksum, export_parquet
from cohortpool.warehouse.load import BatchConflictError, LoadError, LoadResult, load_batch
from cohortpool.warehouse.migrate import MigrationError, migrate
from cohortpool.warehouse.publication import (
    PublishError,
    PublishResult,
    is_published,
    publish,
    published_path,
)
from cohortpool.warehouse.withdrawals import withdrawn_by_site

__all__ = [
    "ANALYSIS_VIEWS",
    "BatchConflictError",
    "BatchError",
    "DictionaryError",
    "LoadError",
    "LoadResult",
    "MigrationError",
    "PublishError",
    "PublishResult",
    "WarehouseError",
    "WarehouseLockedError",
    "WarehouseMissingError",
    "checksum",
    "connect",
    "export_parquet",
    "is_published",
    "load_batch",
    "migrate",
    "open_reader",
    "publish",
    "published_path",
    "sql",
    "withdrawn_by_site",
    "write_dictionary_html",
    "write_dictionary_page",
]
