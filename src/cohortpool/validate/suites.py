"""The reviewed expectation suites: the only reader of ``expectations/``.

Each feature table of a submission has one hand-written Great Expectations suite
(``expectations/<table>.json``). Besides GX's own fields, a suite carries cohortpool's review metadata:

- suite ``meta``: ``owner``, ``rationale``, ``table``, ``key`` (columns naming a row in reports),
  ``publish_unexpected_values`` (may offending values reach validation results and Data Docs?),
  optionally ``distribution`` (what :mod:`cohortpool.validate.distribution` compares across sites);
- expectation ``meta``: ``severity`` (``error`` rows are quarantined, ``warning`` rows load and are
  reported), ``reason`` (the human-readable sentence written to ``quarantine.csv``), optionally
  ``applies_to: "text"`` (runs on the cells as submitted, before typing: format checks) and
  ``duplicates: "keep_first_if_identical"`` (see :mod:`cohortpool.validate.quarantine`).

Column names and types come from the suite's ``expect_column_type_to_be`` expectations, so the suite is the
one place that says what a table looks like; ``tests/unit/test_suites_match_schema.py`` proves it agrees
with ``sql/schema/``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cohortpool.contract import resources

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite
    from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

#: the feature tables of a submission, in validation order
TABLES: tuple[str, ...] = ("clinical", "reads", "imaging_manifest")

#: pandas dtype (as ``expect_column_type_to_be`` names it) -> DuckDB type of the data contract
GX_TO_SQL_TYPE: dict[str, str] = {
    "str": "VARCHAR",
    "Int64": "INTEGER",
    "float64": "DOUBLE",
    "datetime64[us]": "DATE",
}

SEVERITIES = ("error", "warning")
TEXT = "text"
TYPED = "typed"

# ids are derived from the suite name and position so that results and Data Docs are reproducible;
# the namespace is an arbitrary fixed UUID of this project
_ID_NAMESPACE = uuid.UUID("6c1d3f8e-2b4a-4f5e-9a7d-0c3b5e1f2a90")


class SuiteError(ValueError):
    """A suite file is malformed (a review mistake, not a data problem)."""


@dataclass(frozen=True)
class TableSuite:
    """One table's reviewed suite, parsed."""

    table: str
    name: str
    path: Path
    meta: dict[str, Any]
    expectations: tuple[dict[str, Any], ...]
    #: contract columns in order, with their GX (pandas) type names
    column_types: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return list(self.column_types)

    @property
    def key(self) -> list[str]:
        return list(self.meta.get("key", []))

    @property
    def publish_unexpected_values(self) -> bool:
        return bool(self.meta.get("publish_unexpected_values", False))

    def sql_types(self) -> dict[str, str]:
        """Contract column -> DuckDB type, as the warehouse schema must declare it."""
        return {col: GX_TO_SQL_TYPE[t] for col, t in self.column_types.items()}

    def value_sets(self) -> dict[str, list[Any]]:
        """Column -> allowed values of its unconditional ``expect_column_values_to_be_in_set`` (error)."""
        out: dict[str, list[Any]] = {}
        for exp in self.expectations:
            kwargs = exp["kwargs"]
            if (
                exp["type"] == "expect_column_values_to_be_in_set"
                and exp["meta"]["severity"] == "error"
                and "row_condition" not in kwargs
                and isinstance(kwargs.get("value_set"), list)
            ):
                out[kwargs["column"]] = list(kwargs["value_set"])
        return out

    def positions(self, applies_to: str) -> list[int]:
        """Positions (in the suite file) of the expectations that run on the ``text`` or ``typed`` frame."""
        return [
            position
            for position, exp in enumerate(self.expectations)
            if exp["meta"].get("applies_to", TYPED) == applies_to
        ]

    def gx_suite(self, applies_to: str, positions: list[int] | None = None) -> ExpectationSuite:
        """A GX suite of the expectations that run on the ``text`` or ``typed`` frame (or some of them).

        Built with ``ExpectationSuite(**json)`` and deterministic ids: a suite JSON with ``"id": null``
        loads but fails to run in GX 1.24 (``ResourceFreshnessAggregateError``), and random ids would make
        two runs of the same submission differ.
        """
        from great_expectations.core import ExpectationSuite

        chosen = []
        for position in self.positions(applies_to) if positions is None else positions:
            exp = self.expectations[position]
            chosen.append({**exp, "id": str(uuid.uuid5(_ID_NAMESPACE, f"{self.name}#{position}"))})
        name = f"{self.name}.{applies_to}"
        if positions is not None:
            name += "." + "-".join(map(str, positions))
        return ExpectationSuite(
            name=name,
            expectations=chosen,
            meta=dict(self.meta),
            id=str(uuid.uuid5(_ID_NAMESPACE, name)),
        )

    def gx_configs(self, applies_to: str) -> dict[int, ExpectationConfiguration]:
        """Suite position -> GX's configuration of that expectation (ids reproducible): what a result
        of the ``text`` or ``typed`` half is rendered with, and what GX's own results are matched to."""
        built = self.gx_suite(applies_to)
        return {
            position: expectation.configuration
            for position, expectation in zip(self.positions(applies_to), built.expectations, strict=True)
        }


def suite_path(table: str) -> Path:
    """Where the reviewed suite of ``table`` lives."""
    if table not in TABLES:
        raise SuiteError(f"no suite for table {table!r}; tables are {', '.join(TABLES)}")
    return resources.suites_dir() / f"{table}.json"


@cache
def _load(path: Path) -> TableSuite:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read suite: {exc}") from exc
    meta = raw.get("meta") or {}
    for required in ("owner", "rationale", "table", "key"):
        if not meta.get(required):
            raise SuiteError(f"{path}: suite meta needs {required!r}")
    expectations = []
    column_types: dict[str, str] = {}
    for position, exp in enumerate(raw.get("expectations", [])):
        exp_meta = exp.get("meta") or {}
        where = f"{path}: expectation #{position} ({exp.get('type')})"
        if exp_meta.get("severity") not in SEVERITIES:
            raise SuiteError(f"{where}: meta.severity must be one of {SEVERITIES}")
        if not exp_meta.get("reason"):
            raise SuiteError(f"{where}: meta.reason (the sentence a data manager reads) is required")
        if exp_meta.get("applies_to", TYPED) not in (TEXT, TYPED):
            raise SuiteError(f"{where}: meta.applies_to must be {TEXT!r} or {TYPED!r}")
        # an "id": null (or any stored id) is dropped: ids are assigned in TableSuite.gx_suite
        expectations.append({k: v for k, v in exp.items() if k != "id"})
        if exp["type"] == "expect_column_type_to_be":
            type_name = exp["kwargs"]["type_"]
            if type_name not in GX_TO_SQL_TYPE:
                raise SuiteError(f"{where}: type {type_name!r} is not one of {sorted(GX_TO_SQL_TYPE)}")
            column_types[exp["kwargs"]["column"]] = type_name
    if "source_row" not in column_types:
        raise SuiteError(f"{path}: every table carries source_row (data contract section 2)")
    return TableSuite(
        table=meta["table"],
        name=raw["name"],
        path=path,
        meta=meta,
        expectations=tuple(expectations),
        column_types=column_types,
    )


def load_suite(table: str) -> TableSuite:
    """The reviewed suite of one feature table."""
    return _load(suite_path(table))


def load_suites() -> dict[str, TableSuite]:
    """All reviewed suites, by table."""
    return {table: load_suite(table) for table in TABLES}


def ephemeral_context() -> AbstractDataContext:
    """A GX context that lives in memory only, with progress bars off.

    Telemetry is already off (``GX_ANALYTICS_ENABLED=false``, set when ``cohortpool`` is imported); GX's
    progress bars ignore ``TQDM_DISABLE`` and must be switched off in the context itself. GX's default
    ephemeral context also creates a temporary Data Docs folder it never removes; cohortpool renders its
    own Data Docs (:mod:`cohortpool.validate.docs`), so the context gets none.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context
