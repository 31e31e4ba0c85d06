"""Run a table's suite and turn the results into row-level findings: DuckDB SQL first, GX for the rest.

Engines (``SuiteRunner(engine=...)``):

- ``"duckdb"`` (the default): every expectation :mod:`cohortpool.validate.sqlgen` can translate exactly
  runs as generated DuckDB SQL (:mod:`cohortpool.validate.sqlrun`), all of a table half in one scan; the
  others (an unknown type or kwarg, text the translation is not exact on) run with GX on pandas, one by
  one, never skipped. ``tests/unit/test_validate_engines.py`` proves both engines report the same
  (row, expectation) pairs on every planted defect.
- ``"gx"``: everything with GX on pandas, as before; the reference the SQL engine is tested against.

Why DuckDB by default: GX costs about a second per table whatever its size and about ten seconds for 10^6
rows; the SQL does the same checks in a fraction of that (``benchmarks/bench_validate.py``,
``benchmarks/RESULTS.md``). The suites stay the one definition: the SQL is generated from them at run time.

Result format, chosen deliberately: GX runs with ``COMPLETE`` in memory because row-level quarantine
needs every failing row's index (the SQL engine returns the same). Before anything is kept for the run's
validation results or Data Docs, the full lists are dropped, and for tables whose suite says
``publish_unexpected_values: false`` (clinical: quasi-identifiers) every value-bearing field is dropped too,
leaving counts only.

An expectation that raises (GX records it in ``exception_info`` and merely reports "not successful"; the
SQL engine records a DuckDB error the same way) is never taken for an ordinary failure: the table is
rejected with the exception named.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cohortpool.validate.findings import ERROR, CheckOutcome, Finding, Found, RowFindings, expand
from cohortpool.validate.frames import TableFrames, release_arrow_memory
from cohortpool.validate.results import CheckedExpectation, CheckResult, HalfResult
from cohortpool.validate.sqlrun import ChunkedHalf, SqlEngine
from cohortpool.validate.suites import TEXT, TYPED, TableSuite, ephemeral_context

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuite
    from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

log = logging.getLogger(__name__)

#: kept for tables whose values may be published (pseudonyms, codes, acquisition parameters)
_SAMPLE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts")
#: never kept: full per-row lists (size, and values) and positional indexes (meaningless outside the run)
_DROPPED_KEYS = (
    "unexpected_list",
    "unexpected_index_list",
    "partial_unexpected_index_list",
    "unexpected_index_query",
)
_SAMPLE_SIZE = 20
#: from this many rows on, expectations run on the columns they read (see column_groups)
GROUP_COLUMNS_FROM_ROWS = 50_000


#: the engines a SuiteRunner can use (module docstring)
ENGINES = ("duckdb", "gx")

#: one GX call at a time per process (the nightly flow validates sites in threads): GX's suite-parameter
#: parser (pyparsing) breaks when two threads parse at once, and GX contexts are not thread-safe
_GX_LOCK = threading.Lock()


def expectation_label(exp_type: str, kwargs: dict[str, Any]) -> str:
    """A short, stable, readable name of an expectation: type, columns and row condition."""
    columns = kwargs.get("column_list") or [
        kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs
    ]
    label = exp_type.removeprefix("expect_")
    if columns:
        label += f"({', '.join(columns)})"
    condition = kwargs.get("row_condition")
    if isinstance(condition, dict):
        # GX 1.24 rewrites a pandas condition string into {"type": "pass_through", "pass_through_filter": ...}
        condition = condition.get("pass_through_filter", condition)
    if condition:
        label += f" where {condition}"
    return label


def expectation_columns(kwargs: dict[str, Any]) -> tuple[str, ...]:
    """The columns whose values an expectation judges."""
    if "column_list" in kwargs:
        return tuple(kwargs["column_list"])
    return tuple(kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs)


def column_groups(
    suite: TableSuite, applies_to: str, frame_columns: list[str]
) -> list[tuple[tuple[str, ...] | None, list[int]]]:
    """The suite's expectations grouped by the columns they read (``None``: the whole table).

    Why: GX's pandas engine filters the whole DataFrame for every metric it computes, so on a wide table
    each expectation pays for every column. Running each group of expectations on just the columns it
    reads (its column(s), the columns its row condition names, and ``source_row``) gives the same
    results (the index, hence every unexpected row position, is kept) at a fraction of the copying:
    ``benchmarks/bench_validate.py`` measured it on 10^6 rows.
    """
    groups: dict[tuple[str, ...] | None, list[int]] = {}
    for position in suite.positions(applies_to):
        exp = suite.expectations[position]
        key: tuple[str, ...] | None
        if exp["type"].startswith("expect_table_"):
            key = None
        else:
            needed = set(expectation_columns(exp["kwargs"])) | {"source_row"}
            condition = exp["kwargs"].get("row_condition")
            if isinstance(condition, str):
                needed |= {c for c in frame_columns if re.search(rf"\b{re.escape(c)}\b", condition)}
            key = tuple(c for c in frame_columns if c in needed)
        groups.setdefault(key, []).append(position)
    return list(groups.items())


def exception_message(exception_info: dict[str, Any] | None) -> str | None:
    """The message of an expectation that raised, wherever GX nested it; None if it ran."""
    info = exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "unknown error")
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message") or "unknown error")
    return None


@dataclass
class TableRun:
    """A table's findings, per-expectation outcomes and the (sanitised) results for Data Docs."""

    #: table-level findings, and each failed check's rows as positions
    found: list[Found] = field(default_factory=list)
    outcomes: list[CheckOutcome] = field(default_factory=list)
    results: dict[str, HalfResult] = field(default_factory=dict)
    #: expectations the SQL engine left to GX: label -> why
    by_gx: dict[str, str] = field(default_factory=dict)

    @property
    def findings(self) -> list[Finding]:
        """Every finding, one per row (a table validated whole is judged from these)."""
        return expand(self.found)

    @property
    def errored(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.errored]


class SuiteRunner:
    """Runs reviewed suites on DataFrames; holds what every table of every submission can share.

    Built once per process and reused (:class:`cohortpool.validate.batch.Validator` does): the GX
    context (created on first need: with the DuckDB engine, only when an expectation falls back to GX),
    the GX suites built from the reviewed JSON (once per table half, and per group of expectations), their
    expectation configurations, and the DuckDB engine. With the DuckDB engine and suites it translates
    whole, GX is not imported at all (:mod:`cohortpool.validate.results`).
    """

    def __init__(self, engine: str = "duckdb") -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown validation engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.engine = engine
        self._sql = SqlEngine(_SAMPLE_SIZE) if engine == "duckdb" else None
        self._context: AbstractDataContext | None = None
        self._source: Any = None
        self._batches: dict[str, Any] = {}
        self._gx_suites: dict[tuple[Any, ...], ExpectationSuite] = {}
        self._configs: dict[tuple[Any, ...], dict[int, ExpectationConfiguration]] = {}
        self._checked: dict[tuple[Any, ...], dict[int, CheckedExpectation]] = {}

    def _batch_definition(self, asset_name: str) -> Any:
        if self._context is None:
            self._context = ephemeral_context()
            self._source = self._context.data_sources.add_pandas("submission")
        if asset_name not in self._batches:
            asset = self._source.add_dataframe_asset(asset_name)
            self._batches[asset_name] = asset.add_batch_definition_whole_dataframe("whole")
        return self._batches[asset_name]

    def _gx_suite(self, suite: TableSuite, applies_to: str, positions: list[int]) -> ExpectationSuite:
        """The GX suite of these expectations, built (and added to the context) once."""
        key = (suite.path, suite.name, applies_to, tuple(positions))
        if key not in self._gx_suites:
            assert self._context is not None  # _batch_definition ran first
            self._gx_suites[key] = self._context.suites.add_or_update(suite.gx_suite(applies_to, positions))
        return self._gx_suites[key]

    def _half_checked(self, suite: TableSuite, applies_to: str) -> dict[int, CheckedExpectation]:
        """Suite position -> the expectation as results name it (no GX), built once."""
        key = (suite.path, suite.name, applies_to)
        if key not in self._checked:
            self._checked[key] = {
                p: CheckedExpectation.of(suite.expectations[p]) for p in suite.positions(applies_to)
            }
        return self._checked[key]

    def _half_configs(self, suite: TableSuite, applies_to: str) -> dict[int, ExpectationConfiguration]:
        """Suite position -> GX's configuration of that expectation (ids reproducible), built once."""
        key = (suite.path, suite.name, applies_to)
        if key not in self._configs:
            self._configs[key] = suite.gx_configs(applies_to)
        return self._configs[key]

    def run(self, suite: TableSuite, frames: TableFrames, site_id: str) -> TableRun:
        """Run the text and typed halves of ``suite`` on ``frames``."""
        table_run = TableRun()
        parameters = {"site_ids": [site_id]}
        for applies_to, frame in ((TEXT, frames.text), (TYPED, frames.typed)):
            self._run_half(suite, applies_to, frame, parameters, table_run)
            release_arrow_memory()  # the half's copy registered with DuckDB (10^6 reads: 330 MB)
        for outcome in table_run.errored:
            log.error(
                "%s: expectation %s could not be evaluated: %s",
                frames.file,
                outcome.expectation,
                outcome.errored,
            )
        return table_run

    def _run_half(
        self,
        suite: TableSuite,
        applies_to: str,
        frame: pd.DataFrame,
        parameters: dict[str, Any],
        table_run: TableRun,
    ) -> None:
        positions = suite.positions(applies_to)
        if not positions:
            return
        by_position: dict[int, CheckResult] = {}
        for_gx = positions
        if self._sql is not None:
            half = self._sql.run_half(
                [(p, suite.expectations[p]) for p in positions],
                self._half_checked(suite, applies_to),
                frame,
                parameters,
                suite.publish_unexpected_values,
            )
            by_position.update(half.results)
            for_gx = [p for p in positions if p in half.for_gx]
            for position in for_gx:
                exp = suite.expectations[position]
                label = expectation_label(exp["type"], exp["kwargs"])
                table_run.by_gx[label] = half.for_gx[position]
                log.debug("%s: %s runs with GX: %s", suite.table, label, half.for_gx[position])
        if for_gx:
            with _GX_LOCK:
                configs = self._half_configs(suite, applies_to)
                by_position.update(self._run_gx(suite, applies_to, frame, parameters, for_gx, configs))
        self._finish_half(suite, applies_to, by_position, table_run)

    def run_chunks(
        self, suite: TableSuite, chunks: Iterable[TableFrames], site_id: str, connection: Any
    ) -> TableRun | None:
        """Run ``suite`` over a table read in chunks (:mod:`cohortpool.validate.chunks`), with the SQL
        engine alone; None if an expectation needs GX (the caller then validates the table whole).

        ``connection``: a DuckDB database for what must see the whole table (uniqueness keys).
        """
        if self._sql is None:
            return None
        parameters = {"site_ids": [site_id]}
        halves: dict[str, ChunkedHalf] = {}
        for chunk in chunks:
            if not halves:
                for applies_to, frame in ((TEXT, chunk.text), (TYPED, chunk.typed)):
                    positions = suite.positions(applies_to)
                    halves[applies_to] = ChunkedHalf(
                        self._sql,
                        connection,
                        [(p, suite.expectations[p]) for p in positions],
                        self._half_checked(suite, applies_to),
                        {str(c): str(t) for c, t in frame.dtypes.items()},
                        parameters,
                        suite.publish_unexpected_values,
                    )
            halves[TEXT].add(chunk.text, chunk.offset)
            halves[TYPED].add(chunk.typed, chunk.offset)
            if any(half.needs_gx for half in halves.values()):
                return None
        table_run = TableRun()
        for applies_to, half in halves.items():
            if not suite.positions(applies_to):
                continue
            done = half.finish()
            if half.needs_gx:
                return None
            self._finish_half(suite, applies_to, dict(done.results), table_run)
        return table_run

    def _finish_half(
        self,
        suite: TableSuite,
        applies_to: str,
        by_position: dict[int, CheckResult],
        table_run: TableRun,
    ) -> None:
        """Findings, outcomes and the Data Docs result of a half, from its results by suite position."""
        results = [by_position[p] for p in suite.positions(applies_to)]
        for exp_result in results:
            self._collect(suite, applies_to, exp_result, table_run)
        # one result per half, in suite order, for the Data Docs page
        table_run.results[applies_to] = HalfResult(f"{suite.name}.{applies_to}", results)

    def _run_gx(
        self,
        suite: TableSuite,
        applies_to: str,
        frame: pd.DataFrame,
        parameters: dict[str, Any],
        positions: list[int],
        configs: dict[int, ExpectationConfiguration],
    ) -> dict[int, CheckResult]:
        """GX on pandas for the expectations at ``positions``; results by position."""
        batch_definition = self._batch_definition(f"{suite.table}.{applies_to}")
        if len(frame) >= GROUP_COLUMNS_FROM_ROWS:
            wanted = set(positions)
            groups = [
                (columns, [p for p in group if p in wanted])
                for columns, group in column_groups(suite, applies_to, list(frame.columns))
            ]
            groups = [(columns, group) for columns, group in groups if group]
        else:  # small tables: one GX call is cheaper than many (GX's per-call overhead dominates)
            groups = [(None, positions)]
        # GX's store gives a suite new ids when it is first added, so results are matched to positions
        # by what they check (the kwargs GX normalised the same way in both suites)
        positions_of: dict[str, list[int]] = defaultdict(list)
        for position in positions:
            positions_of[_config_key(configs[position], parameters)].append(position)
        found: dict[int, CheckResult] = {}
        for columns, group in groups:
            gx_suite = self._gx_suite(suite, applies_to, group)
            part = frame if columns is None else frame[list(columns)]
            result = batch_definition.get_batch(batch_parameters={"dataframe": part}).validate(
                gx_suite,
                result_format={"result_format": "COMPLETE", "partial_unexpected_count": _SAMPLE_SIZE},
                expectation_parameters=parameters,
            )
            if len(result.results) != len(group):
                raise RuntimeError(
                    f"{suite.path}: GX returned {len(result.results)} results for "
                    f"{len(group)} expectations ({applies_to} half)"
                )
            for exp_result in result.results:
                position = positions_of[_config_key(exp_result.expectation_config, parameters)].pop(0)
                found[position] = CheckResult.from_gx(position, exp_result)
        return found

    def _collect(
        self, suite: TableSuite, applies_to: str, exp_result: CheckResult, table_run: TableRun
    ) -> None:
        config = exp_result.expectation_config
        meta = config.meta or {}
        severity = meta["severity"]
        label = expectation_label(config.type, config.kwargs)
        reason = meta["reason"]
        errored = exception_message(exp_result.exception_info)
        details = exp_result.result or {}
        positions = details.get("unexpected_index_list")
        if errored is None and positions is not None and len(positions) != details.get("unexpected_count"):
            # GX's SQL engine silently caps this list at partial_unexpected_count even with COMPLETE;
            # a row-level quarantine that missed rows would be worse than none
            errored = (
                f"GX returned {len(positions)} row indexes for {details.get('unexpected_count')} "
                "unexpected rows"
            )
        outcome = CheckOutcome(
            table=suite.table,
            expectation=label,
            severity=severity,
            reason=reason,
            success=bool(exp_result.success) and errored is None,
            unexpected_count=int(details.get("unexpected_count") or 0),
            errored=errored,
            applies_to=applies_to,
        )
        if errored is not None:
            table_run.found.append(
                Finding(
                    suite.table,
                    None,
                    label,
                    ERROR,
                    f"expectation could not be evaluated ({errored}); the table is rejected until the "
                    "suite or the data is fixed",
                )
            )
        elif not exp_result.success:
            columns = expectation_columns(config.kwargs)
            if positions is None:
                # a table-level expectation (columns, types): it has no rows to point at
                mismatched = (details.get("details") or {}).get("mismatched") or {}
                value = "; ".join(
                    f"{kind}: {', '.join(map(str, names))}"
                    for kind, names in sorted(mismatched.items())
                    if names
                )
                table_run.found.append(
                    Finding(suite.table, None, label, severity, reason, columns, value=value)
                )
            else:
                rows = np.asarray(positions, dtype=np.int64)
                table_run.found.append(
                    RowFindings(suite.table, label, severity, reason, columns, meta.get("duplicates"), rows)
                )
        # keep only what may be published (module docstring)
        for key in _DROPPED_KEYS:
            details.pop(key, None)
        if suite.publish_unexpected_values:
            outcome.sample = [str(v) for v in details.get("partial_unexpected_list", [])]
        else:
            for key in _SAMPLE_KEYS:
                details.pop(key, None)
        table_run.outcomes.append(outcome)


def _config_key(config: ExpectationConfiguration, parameters: dict[str, Any]) -> str:
    """What an expectation checks, as GX reports it in a result (suite parameters filled in)."""
    kwargs = {
        k: parameters.get(v["$PARAMETER"], v) if isinstance(v, dict) and "$PARAMETER" in v else v
        for k, v in config.kwargs.items()
        if k != "batch_id"
    }
    return json.dumps([config.type, kwargs], sort_keys=True, default=str)
