"""The only reader of ``sql/``: load a SQL file by name and run it with bound parameters.

Values always travel as DuckDB prepared-statement parameters (``$name``), never pasted into the text.
Identifiers cannot be bound, so a file may name a table or view through a ``{{slot}}`` that is filled
only from :data:`ALLOWED_IDENTIFIERS` (the warehouse's own tables and views), quoted part by part.
Files may hold several statements; they are split by DuckDB's own parser (``extract_statements``),
never on ``;``, and each statement receives only the parameters it names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cohortpool.contract import resources
from cohortpool.contract.files import sha256_file

_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
_SLOT = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

#: Every identifier a ``{{slot}}`` may be filled with: the warehouse's tables, views and macros.
ALLOWED_IDENTIFIERS: frozenset[str] = frozenset(
    {
        "raw.clinical",
        "raw.reads",
        "raw.imaging_manifest",
        "raw.quarantine",
        "raw.validation_warnings",
        "analysis.patients",
        "analysis.vertebra_reads",
        "analysis.vertebrae",
        "analysis.findings_long",
        "analysis.site_counts",
        "analysis.patients_asof",
        "analysis.vertebra_reads_asof",
        "analysis.vertebrae_asof",
        "analysis.findings_long_asof",
        "analysis.site_counts_asof",
    }
)


class SqlError(RuntimeError):
    """A SQL file is missing, misnamed, or called with the wrong parameters."""


def sql_root() -> Path:
    """The ``sql/`` folder the package ships (never looked up from the working directory)."""
    return resources.sql_dir()


def _path(name: str) -> Path:
    if not _NAME.match(name):
        raise SqlError(
            f"bad SQL file name {name!r}: use a path under sql/ without '.sql', "
            "e.g. 'analysis/agg_counts' (lowercase letters, digits, _ and /)"
        )
    return sql_root() / f"{name}.sql"


def load_sql(name: str) -> str:
    """The text of ``sql/<name>.sql``.

    Parameters
    ----------
    name
        Path under ``sql/`` without the extension, e.g. ``"load/insert_clinical"``.
    """
    path = _path(name)
    if not path.is_file():
        raise SqlError(f"no SQL file {path} (name {name!r}); see sql/ for the files that exist")
    return path.read_text(encoding="utf-8")


_DATA_FILE = re.compile(r"^[a-z0-9_]+\.yaml$")


def load_data_file(filename: str) -> str:
    """The text of a data file kept beside the SQL, e.g. ``sql/dictionary.yaml`` (the data dictionary)."""
    if not _DATA_FILE.match(filename):
        raise SqlError(f"bad data file name {filename!r}: a .yaml file directly in sql/")
    path = sql_root() / filename
    if not path.is_file():
        raise SqlError(f"no data file {path}")
    return path.read_text(encoding="utf-8")


def list_sql(folder: str) -> list[str]:
    """Names (for :func:`load_sql`) of the ``.sql`` files directly in ``sql/<folder>``, sorted."""
    base = _path(folder).with_suffix("")
    if not base.is_dir():
        return []
    return sorted(f"{folder}/{p.stem}" for p in base.glob("*.sql"))


def sql_sha256(name: str) -> str:
    """Checksum of a SQL file's bytes (migrations record it so edits are caught)."""
    return sha256_file(_path(name))


def quote_identifier(identifier: str) -> str:
    """Quote an allow-listed ``schema.name`` for DuckDB; anything else is refused."""
    if identifier not in ALLOWED_IDENTIFIERS:
        raise SqlError(f"identifier {identifier!r} is not in cohortpool.warehouse.sql.ALLOWED_IDENTIFIERS")
    return ".".join('"' + part.replace('"', '""') + '"' for part in identifier.split("."))


def render(name: str, identifiers: Mapping[str, str] | None = None) -> str:
    """The file's text with every ``{{slot}}`` filled from ``identifiers`` (allow-listed, quoted)."""
    text = load_sql(name)
    given = dict(identifiers or {})
    slots = set(_SLOT.findall(text))
    missing = slots - set(given)
    if missing:
        raise SqlError(f"sql/{name}.sql needs identifier(s) {sorted(missing)}")
    unused = set(given) - slots
    if unused:
        raise SqlError(f"sql/{name}.sql has no slot(s) {sorted(unused)}")
    return _SLOT.sub(lambda m: quote_identifier(given[m.group(1)]), text)


def parameters(name: str, identifiers: Mapping[str, str] | None = None) -> set[str]:
    """The ``$names`` the statements of ``sql/<name>.sql`` use (callers with a fixed set of values,
    such as the checks runner, pass only these)."""
    statements = duckdb.extract_statements(render(name, identifiers))
    return set().union(*(s.named_parameters for s in statements))


def run_sql(
    con: duckdb.DuckDBPyConnection,
    name: str,
    /,
    *,
    identifiers: Mapping[str, str] | None = None,
    **params: Any,
) -> duckdb.DuckDBPyConnection:
    """Run every statement of ``sql/<name>.sql`` with ``$params`` bound; returns the last result.

    A parameter the file never uses, or one it needs and was not given, is an error naming the file:
    a typo must not silently run a query without its filter.
    """
    statements = duckdb.extract_statements(render(name, identifiers))
    if not statements:
        raise SqlError(f"sql/{name}.sql holds no statement")
    needed = set().union(*(s.named_parameters for s in statements))
    missing = needed - set(params)
    if missing:
        raise SqlError(f"sql/{name}.sql needs parameter(s) {sorted('$' + p for p in missing)}")
    unused = set(params) - needed
    if unused:
        raise SqlError(f"sql/{name}.sql has no parameter(s) {sorted('$' + p for p in unused)}")
    result = con
    for statement in statements:
        bound = {key: params[key] for key in statement.named_parameters}
        result = con.execute(statement, bound) if bound else con.execute(statement)
    return result


def query_df(
    con: duckdb.DuckDBPyConnection,
    name: str,
    /,
    *,
    identifiers: Mapping[str, str] | None = None,
    **params: Any,
) -> pd.DataFrame:
    """The last statement's result of ``sql/<name>.sql`` as a pandas DataFrame."""
    return run_sql(con, name, identifiers=identifiers, **params).df()


def query_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    /,
    *,
    identifiers: Mapping[str, str] | None = None,
    **params: Any,
) -> list[tuple[Any, ...]]:
    """The last statement's result of ``sql/<name>.sql`` as a list of tuples."""
    return run_sql(con, name, identifiers=identifiers, **params).fetchall()
