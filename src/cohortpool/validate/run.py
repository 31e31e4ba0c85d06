"""Run a table's suite with Great Expectations on pandas and turn the results into row-level findings.

Why pandas: ``benchmarks/bench_validate.py`` measured the paths the issue names (GX on pandas, GX pushed
down into DuckDB through SQLAlchemy, plain DuckDB SQL) on 10^6 reads rows; see ``benchmarks/RESULTS.md``.

Result format, chosen deliberately: GX runs with ``COMPLETE`` in memory because row-level quarantine
needs every failing row's index. Before anything is kept for the run's validation results or Data Docs,
the full lists are dropped, and for tables whose suite says ``publish_unexpected_values: false`` (clinical:
quasi-identifiers) every value-bearing field is dropped too, leaving counts only.

An expectation that raises (GX records it in ``exception_info`` and merely reports "not successful")
is never taken for an ordinary failure: the table is rejected with the exception named.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cohortpool.validate.findings import ERROR, CheckOutcome, Finding
from cohortpool.validate.frames import TableFrames
from cohortpool.validate.suites import TEXT, TYPED, TableSuite, ephemeral_context

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuiteValidationResult

log = logging.getLogger(__name__)

#: kept for tables whose values may be published (pseudonyms, codes, acquisition parameters)
_SAMPLE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts")
#: never kept: full per-row lists (size, and values) and positional indexes (meaningless outside the run)
_DROPPED_KEYS = ("unexpected_list", "unexpected_index_list", "partial_unexpected_index_list")
_SAMPLE_SIZE = 20
#: from this many rows on, expectations run on the columns they read (see column_groups)
GROUP_COLUMNS_FROM_ROWS = 50_000


#: one GX validation at a time per process (the nightly flow validates sites in threads)
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


def _gx_version() -> str:
    import great_expectations

    return str(great_expectations.__version__)


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
    """A table's findings, per-expectation outcomes and the (sanitised) GX results for Data Docs."""

    findings: list[Finding] = field(default_factory=list)
    outcomes: list[CheckOutcome] = field(default_factory=list)
    results: dict[str, ExpectationSuiteValidationResult] = field(default_factory=dict)

    @property
    def errored(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.errored]


class SuiteRunner:
    """Runs reviewed suites on DataFrames in one ephemeral GX context."""

    def __init__(self) -> None:
        self._context = ephemeral_context()
        self._source = self._context.data_sources.add_pandas("submission")
        self._batches: dict[str, Any] = {}

    def _batch_definition(self, asset_name: str) -> Any:
        if asset_name not in self._batches:
            asset = self._source.add_dataframe_asset(asset_name)
            self._batches[asset_name] = asset.add_batch_definition_whole_dataframe("whole")
        return self._batches[asset_name]

    def run(self, suite: TableSuite, frames: TableFrames, site_id: str) -> TableRun:
        """Run the text and typed halves of ``suite`` on ``frames``."""
        table_run = TableRun()
        with _GX_LOCK:  # GX's suite-parameter parser (pyparsing) breaks when two threads parse at once
            for applies_to, frame in ((TEXT, frames.text), (TYPED, frames.typed)):
                self._run_half(suite, applies_to, frame, site_id, table_run)
        for outcome in table_run.errored:
            log.error(
                "%s: expectation %s could not be evaluated: %s",
                frames.file,
                outcome.expectation,
                outcome.errored,
            )
        return table_run

    def _run_half(
        self, suite: TableSuite, applies_to: str, frame: pd.DataFrame, site_id: str, table_run: TableRun
    ) -> None:
        from great_expectations.core import ExpectationSuiteValidationResult

        batch_definition = self._batch_definition(f"{suite.table}.{applies_to}")
        results = []
        if len(frame) >= GROUP_COLUMNS_FROM_ROWS:
            groups = column_groups(suite, applies_to, list(frame.columns))
        else:  # small tables: one GX call is cheaper than many (GX's per-call overhead dominates)
            groups = [(None, suite.positions(applies_to))] if suite.positions(applies_to) else []
        for columns, positions in groups:
            gx_suite = self._context.suites.add_or_update(suite.gx_suite(applies_to, positions))
            part = frame if columns is None else frame[list(columns)]
            result = batch_definition.get_batch(batch_parameters={"dataframe": part}).validate(
                gx_suite,
                result_format={"result_format": "COMPLETE", "partial_unexpected_count": _SAMPLE_SIZE},
                expectation_parameters={"site_ids": [site_id]},
            )
            if len(result.results) != len(positions):
                raise RuntimeError(
                    f"{suite.path}: GX returned {len(result.results)} results for "
                    f"{len(positions)} expectations ({applies_to} half)"
                )
            results.extend(result.results)
        if not results:
            return
        for exp_result in results:
            self._collect(suite, applies_to, exp_result, table_run)
        successes = sum(bool(r.success) for r in results)
        # one result per half, in suite order, for the Data Docs page
        order = {exp.id: i for i, exp in enumerate(suite.gx_suite(applies_to).expectations)}
        results.sort(key=lambda r: order.get(r.expectation_config.id, len(order)))
        table_run.results[applies_to] = ExpectationSuiteValidationResult(
            success=successes == len(results),
            results=results,
            suite_name=f"{suite.name}.{applies_to}",
            statistics={
                "evaluated_expectations": len(results),
                "successful_expectations": successes,
                "unsuccessful_expectations": len(results) - successes,
                "success_percent": 100.0 * successes / len(results),
            },
            meta={"great_expectations_version": _gx_version()},
        )

    def _collect(self, suite: TableSuite, applies_to: str, exp_result: Any, table_run: TableRun) -> None:
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
            table_run.findings.append(
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
                table_run.findings.append(
                    Finding(suite.table, None, label, severity, reason, columns, value=value)
                )
            else:
                duplicates = meta.get("duplicates")
                table_run.findings.extend(
                    Finding(suite.table, int(pos), label, severity, reason, columns, duplicates)
                    for pos in positions
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
