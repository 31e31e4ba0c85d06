"""Run a suite's expectations on a DataFrame in DuckDB, as GX results, from the SQL :mod:`sqlgen` writes.

One scan per table half evaluates every translated expectation (uniqueness: one grouping query per key)
and returns, per expectation, the rows looked at, the rows left out as missing, the failing
row positions (ordered) and the number of rows the SQL could not decide. The answers are turned into
GX ``ExpectationValidationResult`` objects shaped as GX's pandas engine shapes them (the same counts,
percentages and samples), so that everything downstream (findings, quarantine, Data Docs) is the same code
for both engines.

What is never quiet:

- an expectation :mod:`sqlgen` cannot translate, or whose column holds text its translation is not exact
  on, is handed back to the caller to run with GX (:attr:`HalfRun.for_gx`, with the reason);
- a DuckDB error is an error of the expectation that raised it (the expectations are then run one by one
  to find it), recorded in ``exception_info`` as GX records its own;
- a row the SQL neither passes nor fails (a null where a boolean was due) is an error, not a pass.

Frames are registered through Arrow with their pandas dtypes mapped one to one (``str``, ``Int64``,
``float64``, ``datetime64[us]``); a column of any other dtype sends the whole half to GX, so that a type
check means here exactly what it means to GX.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from cohortpool.validate.sqlgen import (
    COLUMN_TYPE,
    GX_TYPE_TO_REGISTERED,
    ROWS,
    TABLE_COLUMNS,
    SqlCheck,
    Untranslatable,
    quote,
    translate,
)

if TYPE_CHECKING:
    from great_expectations.core import ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

#: pandas dtype name -> the Arrow type it is registered as (its DuckDB type: sqlgen.GX_TYPE_TO_REGISTERED)
_ARROW = {
    "str": pa.string(),
    "Int64": pa.int64(),
    "float64": pa.float64(),
    "datetime64[us]": pa.timestamp("us"),
}
_NO_EXCEPTION = {"raised_exception": False, "exception_message": None, "exception_traceback": None}


@dataclass
class HalfRun:
    """The results of one half: by suite position; ``for_gx`` are the positions GX must run (and why)."""

    results: dict[int, ExpectationValidationResult] = field(default_factory=dict)
    for_gx: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Registered:
    name: str
    position_column: str


class SqlEngine:
    """DuckDB evaluation of translated expectations; one in-memory database per engine and process.

    Thread-safe: each run works on its own cursor and its own registered view. A process that inherits
    an engine through ``fork`` opens its own database on first use instead of sharing the parent's, and
    never closes the parent's (see :func:`_keep_inherited_databases`).
    """

    def __init__(self, partial_unexpected_count: int = 20) -> None:
        self._partial = partial_unexpected_count
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._pid = 0
        self._names = itertools.count()
        _ENGINES.add(self)

    def _cursor(self) -> tuple[duckdb.DuckDBPyConnection, str]:
        with self._lock:
            if self._connection is None or self._pid != os.getpid():
                # a single thread per query: the table halves of a small submission gain nothing from
                # more, and the hub validates site-nights in parallel processes
                self._connection = duckdb.connect(":memory:", config={"threads": 1})
                self._pid = os.getpid()
            return self._connection.cursor(), f"cohortpool_half_{next(self._names)}"

    def run_half(
        self,
        expectations: list[tuple[int, dict[str, Any]]],
        configs: Mapping[int, ExpectationConfiguration],
        frame: pd.DataFrame,
        parameters: Mapping[str, Any],
        publish_values: bool,
    ) -> HalfRun:
        """Evaluate ``(position, expectation)`` pairs of a suite on ``frame`` (module docstring)."""
        out = HalfRun()
        if not expectations:
            return out
        dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
        columns = list(dtypes)
        unmapped = [c for c in columns if dtypes[c] not in _ARROW]
        folded = [c.casefold() for c in columns]
        if unmapped or len(set(folded)) != len(folded):
            reason = (
                f"column(s) {', '.join(unmapped)} of a dtype the SQL engine does not map"
                if unmapped
                else "column names that differ only in case (one name to DuckDB)"
            )
            out.for_gx = {position: reason for position, _ in expectations}
            return out
        types = {c: GX_TYPE_TO_REGISTERED[dtypes[c]] for c in columns}
        checks: dict[int, SqlCheck] = {}
        for position, exp in expectations:
            try:
                checks[position] = translate(exp["type"], exp["kwargs"], types, parameters)
            except Untranslatable as exc:
                out.for_gx[position] = str(exc)
        cursor, view = self._cursor()
        try:
            registered = _register(cursor, view, frame, dtypes)
            row_checks = {p: c for p, c in checks.items() if c.kind == ROWS}
            answers = self._answers(cursor, registered, row_checks)
            for position, check in checks.items():
                config = configs[position]
                if check.kind == TABLE_COLUMNS:
                    out.results[position] = _columns_result(config, check, list(frame.columns))
                elif check.kind == COLUMN_TYPE:
                    out.results[position] = _type_result(config, check, frame)
                else:
                    answer = answers[position]
                    if isinstance(answer, str):
                        out.results[position] = _error_result(config, answer)
                    elif answer["not_ascii"]:
                        out.for_gx[position] = (
                            f"column {check.ascii_only[0]} holds non-ASCII text; the SQL translation "
                            "is exact on ASCII only"
                        )
                    else:
                        out.results[position] = self._rows_result(
                            config, check, answer, frame, publish_values
                        )
        finally:
            cursor.close()
        return out

    def _answers(
        self, cursor: duckdb.DuckDBPyConnection, registered: _Registered, checks: Mapping[int, SqlCheck]
    ) -> dict[int, dict[str, Any] | str]:
        """Per check: its counts and failing positions, or the error DuckDB raised for it."""
        if not checks:
            return {}
        try:
            return dict(zip(checks, _query(cursor, registered, list(checks.values())), strict=True))
        except duckdb.Error:
            pass
        # one of them raised: ask again one by one, so that the error lands on the expectation it belongs to
        answers: dict[int, dict[str, Any] | str] = {}
        for position, check in checks.items():
            try:
                answers[position] = _query(cursor, registered, [check])[0]
            except duckdb.Error as exc:
                answers[position] = f"DuckDB: {type(exc).__name__}: {exc}"
        return answers

    def _rows_result(
        self,
        config: ExpectationConfiguration,
        check: SqlCheck,
        answer: dict[str, Any],
        frame: pd.DataFrame,
        publish_values: bool,
    ) -> ExpectationValidationResult:
        from great_expectations.core import ExpectationValidationResult

        if answer["undecided"]:
            return _error_result(
                config,
                f"the SQL translation neither passed nor failed {answer['undecided']} row(s) "
                "(a null where a boolean was due); fix the translation in cohortpool.validate.sqlgen",
            )
        positions: list[int] = answer["unexpected"]
        element_count, missing_count = answer["elements"], answer["missing"]
        unexpected_count = len(positions)
        result: dict[str, Any] = _percentages(
            element_count, None if not check.counts_missing else missing_count, unexpected_count
        )
        if publish_values:
            values = _values(frame, check.value_columns, positions) if positions else []
            result["partial_unexpected_list"] = values[: self._partial]
            result["partial_unexpected_counts"] = _value_counts(values, self._partial)
        result["partial_unexpected_index_list"] = positions[: self._partial]
        result["unexpected_index_list"] = positions
        return ExpectationValidationResult(
            success=unexpected_count == 0,
            expectation_config=config,
            result=result,
            exception_info=dict(_NO_EXCEPTION),
        )


#: every engine of this process, to find their databases after a fork
_ENGINES: weakref.WeakSet[SqlEngine] = weakref.WeakSet()
#: databases a forked child inherited: referenced until the child ends, never closed there
_INHERITED: list[duckdb.DuckDBPyConnection] = []


def _keep_inherited_databases() -> None:
    """In a forked child: set the parent's DuckDB connections aside, for good.

    Closing a DuckDB database opened by the parent crashes the child (segmentation fault, measured: an
    engine left as garbage by the parent was collected in a process-pool worker). The child keeps a
    reference to each, so that no garbage collection closes them, and its engines open new ones.
    """
    for engine in list(_ENGINES):
        if engine._connection is not None:
            _INHERITED.append(engine._connection)
            engine._connection = None
        engine._lock = (
            threading.Lock()
        )  # held by another thread of the parent at the fork, it would stay held


os.register_at_fork(after_in_child=_keep_inherited_databases)


def _register(
    cursor: duckdb.DuckDBPyConnection, view: str, frame: pd.DataFrame, dtypes: dict[str, str]
) -> _Registered:
    """``frame`` as a DuckDB view of its columns, each of the Arrow type its pandas dtype maps to."""
    position_column = "__cohortpool_row"
    while position_column in dtypes:
        position_column += "_"
    arrays = [
        pa.array(series, type=_ARROW[dtypes[name]], from_pandas=True)
        for name, series in zip(dtypes, (frame.iloc[:, i] for i in range(frame.shape[1])), strict=True)
    ]
    arrays.append(pa.array(np.arange(len(frame), dtype=np.int64)))
    cursor.register(view, pa.Table.from_arrays(arrays, names=[*dtypes, position_column]))
    return _Registered(view, position_column)


def _query(
    cursor: duckdb.DuckDBPyConnection, registered: _Registered, checks: list[SqlCheck]
) -> list[dict[str, Any]]:
    """Per check: elements, missing, undecided, failing positions, non-ASCII text.

    One scan projects a boolean column per distinct condition (the rows looked at, the rows missing, the
    failing rows, non-ASCII text) and numpy counts them: on small tables an order of magnitude faster than
    DuckDB's filtered aggregates (one per check and count), and one pass on 10^6 rows. A uniqueness check
    asks its own query: the keys repeated among the rows looked at (GROUP BY ... HAVING), then the rows
    holding them (a semi join that treats nulls as equal, as pandas' ``duplicated`` does): four times
    faster than a window count over the table. Positions come from the position column, never from the
    output order.
    """
    aliases: dict[str, str] = {}

    def column(sql: str) -> str:
        return aliases.setdefault(sql, f"c{len(aliases)}")

    plan = []
    for check in checks:
        ascii_test = " OR ".join(f"strlen({quote(c)}) <> length({quote(c)})" for c in check.ascii_only)
        plan.append(
            (
                None if check.domain == "TRUE" else column(check.domain),
                None if check.missing == "FALSE" else column(check.missing),
                None if check.unique_key else column(check.unexpected),
                column(ascii_test) if ascii_test else None,
            )
        )
    position = quote(registered.position_column)
    view = quote(registered.name)
    selects = [f"{position} AS p"] + [f"({sql}) AS {a}" for sql, a in aliases.items()]
    arrays = cursor.execute(f"SELECT {', '.join(selects)} FROM {view}").fetchnumpy()
    positions = np.asarray(arrays["p"], dtype=np.int64)
    everywhere = np.ones(len(positions), dtype=bool)
    nowhere = np.zeros(len(positions), dtype=bool)

    def true(alias: str | None, default: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the column is true, and where it is null."""
        if alias is None:
            return default, nowhere
        values: Any = arrays[alias]
        null = np.ma.getmaskarray(values)
        return np.asarray(np.ma.getdata(values), dtype=bool) & ~null, null

    answers = []
    for check, (domain_alias, missing_alias, unexpected_alias, ascii_alias) in zip(checks, plan, strict=True):
        domain, _ = true(domain_alias, everywhere)  # a null condition leaves the row out, as in pandas
        missing, _ = true(missing_alias, nowhere)
        looked_at = domain & ~missing
        if check.unique_key:
            failing_positions = _repeated(cursor, registered, check)
            undecided_count = 0
        else:
            failing, undecided = true(unexpected_alias, nowhere)
            failing_positions = positions[looked_at & failing]
            undecided_count = int((looked_at & undecided).sum())
        not_ascii, _ = true(ascii_alias, nowhere)
        answers.append(
            {
                "elements": int(domain.sum()),
                "missing": int((domain & missing).sum()),
                "undecided": undecided_count,
                "unexpected": np.sort(failing_positions).tolist(),
                "not_ascii": bool(not_ascii.any()),
            }
        )
    return answers


def _repeated(cursor: duckdb.DuckDBPyConnection, registered: _Registered, check: SqlCheck) -> np.ndarray:
    """Positions of the rows looked at whose ``unique_key`` values occur more than once among them."""
    key = [quote(c) for c in check.unique_key]
    on = " AND ".join(f"kept.{c} IS NOT DISTINCT FROM repeated.{c}" for c in key)
    query = (
        f"WITH kept AS (SELECT {quote(registered.position_column)} AS p, {', '.join(key)} "
        f"FROM {quote(registered.name)} WHERE ({check.domain}) AND NOT ({check.missing})), "
        f"repeated AS (SELECT {', '.join(key)} FROM kept GROUP BY {', '.join(key)} HAVING count(*) > 1) "
        f"SELECT kept.p FROM kept SEMI JOIN repeated ON {on}"
    )
    return np.asarray(cursor.execute(query).fetchnumpy()["p"], dtype=np.int64)


def _percentages(element_count: int, missing_count: int | None, unexpected_count: int) -> dict[str, Any]:
    """GX's counts and percentages of a map expectation (``_format_map_output``, COMPLETE format)."""
    total = unexpected_count / element_count * 100 if element_count > 0 else None
    if missing_count is None:
        return {
            "element_count": element_count,
            "unexpected_count": unexpected_count,
            "unexpected_percent": total,
        }
    nonmissing = element_count - missing_count
    of_nonmissing = unexpected_count / nonmissing * 100 if element_count > 0 and nonmissing > 0 else None
    return {
        "element_count": element_count,
        "unexpected_count": unexpected_count,
        "unexpected_percent": of_nonmissing,
        "missing_count": missing_count,
        "missing_percent": missing_count / element_count * 100 if element_count > 0 else None,
        "unexpected_percent_total": total,
        "unexpected_percent_nonmissing": of_nonmissing,
    }


def _python(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _values(frame: pd.DataFrame, columns: tuple[str, ...], positions: list[int]) -> list[Any]:
    """The failing rows' values as GX lists them: a value, a pair (tuple), or a record (dict)."""
    picked = {c: [_python(v) for v in frame[c].iloc[positions].tolist()] for c in columns}
    if len(columns) == 1:
        return picked[columns[0]]
    if len(columns) == 2:
        return list(zip(picked[columns[0]], picked[columns[1]], strict=True))
    return [dict(zip(columns, row, strict=True)) for row in zip(*picked.values(), strict=True)]


def _value_counts(values: list[Any], limit: int) -> list[dict[str, Any]]:
    hashable = [tuple(v.values()) if isinstance(v, dict) else v for v in values]
    try:
        common = Counter(hashable).most_common(limit)
        return [{"value": k, "count": n} for k, n in sorted(common, key=lambda kv: (-kv[1], kv[0]))]
    except TypeError:
        return [{"error": "partial_exception_counts requires a hashable type"}]


def _columns_result(
    config: ExpectationConfiguration, check: SqlCheck, actual: list[object]
) -> ExpectationValidationResult:
    """``expect_table_columns_to_match_set`` as GX decides it (the frame's column names)."""
    from great_expectations.core import ExpectationValidationResult

    actual_set = {str(c) for c in actual}
    expected_set = set(check.expected)
    observed = sorted(actual_set)
    unexpected = sorted(actual_set - expected_set)
    missing = sorted(expected_set - actual_set)
    result: dict[str, Any] = {"observed_value": observed}
    success = not unexpected and not missing
    if not success:
        mismatched: dict[str, list[str]] = {}
        if unexpected:
            mismatched["unexpected"] = unexpected
        if missing:
            mismatched["missing"] = missing
        result["details"] = {"mismatched": mismatched}
        success = not check.exact and not missing
    return ExpectationValidationResult(
        success=success, expectation_config=config, result=result, exception_info=dict(_NO_EXCEPTION)
    )


def _type_result(
    config: ExpectationConfiguration, check: SqlCheck, frame: pd.DataFrame
) -> ExpectationValidationResult:
    """``expect_column_type_to_be``: the registered DuckDB type of the column against the expected one."""
    from great_expectations.core import ExpectationValidationResult

    dtype = str(frame[check.columns[0]].dtype)
    registered = GX_TYPE_TO_REGISTERED.get(dtype)
    return ExpectationValidationResult(
        success=registered == check.expected,
        expectation_config=config,
        result={"observed_value": dtype},
        exception_info=dict(_NO_EXCEPTION),
    )


def _error_result(config: ExpectationConfiguration, message: str) -> ExpectationValidationResult:
    from great_expectations.core import ExpectationValidationResult

    return ExpectationValidationResult(
        success=False,
        expectation_config=config,
        result={},
        exception_info={"raised_exception": True, "exception_message": message, "exception_traceback": None},
    )
