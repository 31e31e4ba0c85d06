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
        gx_suite = suite.gx_suite(applies_to)
        if not gx_suite.expectations:
            return
        gx_suite = self._context.suites.add_or_update(gx_suite)
        batch = self._batch_definition(f"{suite.table}.{applies_to}").get_batch(
            batch_parameters={"dataframe": frame}
        )
        result = batch.validate(
            gx_suite,
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": _SAMPLE_SIZE},
            expectation_parameters={"site_ids": [site_id]},
        )
        if len(result.results) != len(gx_suite.expectations):
            raise RuntimeError(
                f"{suite.path}: GX returned {len(result.results)} results for "
                f"{len(gx_suite.expectations)} expectations ({applies_to} half)"
            )
        for exp_result in result.results:
            self._collect(suite, applies_to, exp_result, table_run)
        table_run.results[applies_to] = result

    def _collect(self, suite: TableSuite, applies_to: str, exp_result: Any, table_run: TableRun) -> None:
        config = exp_result.expectation_config
        meta = config.meta or {}
        severity = meta["severity"]
        label = expectation_label(config.type, config.kwargs)
        reason = meta["reason"]
        errored = exception_message(exp_result.exception_info)
        details = exp_result.result or {}
        positions = details.get("unexpected_index_list")
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
                table_run.findings.append(Finding(suite.table, None, label, severity, reason, columns))
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
