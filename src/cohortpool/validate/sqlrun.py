"""Run a suite's expectations on a DataFrame in DuckDB, from the SQL :mod:`sqlgen` writes.

One scan per table half evaluates every translated expectation (uniqueness: one grouping query per key)
and returns, per expectation, the rows looked at, the rows left out as missing, the failing
row positions (ordered) and the number of rows the SQL could not decide. The answers are turned into
results (:class:`cohortpool.validate.results.CheckResult`: plain records, so that checking rows never
imports GX) shaped as GX's pandas engine shapes its ``ExpectationValidationResult`` (the same counts,
percentages and samples), so that everything downstream (findings, quarantine, Data Docs) is the same code
for both engines.

What is never quiet:

- an expectation :mod:`sqlgen` cannot translate is handed back to the caller to run with GX
  (:attr:`HalfRun.for_gx`, with the reason);
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
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from cohortpool.validate.results import CheckedExpectation, CheckResult
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

    results: dict[int, CheckResult] = field(default_factory=dict)
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
        configs: Mapping[int, CheckedExpectation],
        frame: pd.DataFrame,
        parameters: Mapping[str, Any],
        publish_values: bool,
    ) -> HalfRun:
        """Evaluate ``(position, expectation)`` pairs of a suite on ``frame`` (module docstring)."""
        out = HalfRun()
        if not expectations:
            return out
        dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
        checks = translate_half(expectations, dtypes, parameters, out)
        if not checks:
            return out
        cursor, view = self._cursor()
        try:
            registered = _register(cursor, view, frame, dtypes)
            row_checks = {p: c for p, c in checks.items() if c.kind == ROWS}
            answers = _answers(cursor, registered, row_checks)
            values = (
                {
                    p: FailingValues(self._partial, _values(frame, c.value_columns, a["unexpected"]))
                    for p, c in row_checks.items()
                    if not isinstance(a := answers[p], str) and len(a["unexpected"])
                }
                if publish_values
                else {}
            )
            self.finish_half(checks, configs, answers, values, frame, publish_values, out)
        finally:
            cursor.close()
        return out

    def finish_half(
        self,
        checks: Mapping[int, SqlCheck],
        configs: Mapping[int, CheckedExpectation],
        answers: Mapping[int, dict[str, Any] | str],
        values: Mapping[int, FailingValues],
        frame: pd.DataFrame,
        publish_values: bool,
        out: HalfRun,
    ) -> None:
        """Results of a half's translated checks from their answers (``frame``: the table's columns
        and dtypes, of the whole table or of any of its chunks)."""
        for position, check in checks.items():
            config = configs[position]
            if check.kind == TABLE_COLUMNS:
                out.results[position] = _columns_result(position, config, check, list(frame.columns))
            elif check.kind == COLUMN_TYPE:
                out.results[position] = _type_result(position, config, check, frame)
            else:
                answer = answers[position]
                if isinstance(answer, str):
                    out.results[position] = _error_result(position, config, answer)
                else:
                    out.results[position] = self._rows_result(
                        position, config, check, answer, values.get(position), publish_values
                    )

    def _rows_result(
        self,
        position: int,
        config: CheckedExpectation,
        check: SqlCheck,
        answer: dict[str, Any],
        values: FailingValues | None,
        publish_values: bool,
    ) -> CheckResult:
        if answer["undecided"]:
            return _error_result(
                position,
                config,
                f"the SQL translation neither passed nor failed {answer['undecided']} row(s) "
                "(a null where a boolean was due); fix the translation in cohortpool.validate.sqlgen",
            )
        # an array, not a list: a check can fail on every row of 10^6 (issue 16 item 2)
        positions: np.ndarray = answer["unexpected"]
        element_count, missing_count = answer["elements"], answer["missing"]
        unexpected_count = len(positions)
        result: dict[str, Any] = _percentages(
            element_count, None if not check.counts_missing else missing_count, unexpected_count
        )
        if publish_values:
            values = values or FailingValues(self._partial)
            result["partial_unexpected_list"] = values.first
            result["partial_unexpected_counts"] = values.counts()
        result["partial_unexpected_index_list"] = positions[: self._partial].tolist()
        result["unexpected_index_list"] = positions
        return CheckResult(position, unexpected_count == 0, config, result, dict(_NO_EXCEPTION))


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


def translate_half(
    expectations: list[tuple[int, dict[str, Any]]],
    dtypes: Mapping[str, str],
    parameters: Mapping[str, Any],
    out: HalfRun,
) -> dict[int, SqlCheck]:
    """The SQL checks of a half's expectations on columns of these dtypes; the others go to
    ``out.for_gx`` with the reason."""
    columns = list(dtypes)
    unmapped = [c for c in columns if dtypes[c] not in _ARROW]
    folded = [c.casefold() for c in columns]
    if unmapped or len(set(folded)) != len(folded):
        reason = (
            f"column(s) {', '.join(unmapped)} of a dtype the SQL engine does not map"
            if unmapped
            else "column names that differ only in case (one name to DuckDB)"
        )
        out.for_gx.update({position: reason for position, _ in expectations})
        return {}
    types = {c: GX_TYPE_TO_REGISTERED[dtypes[c]] for c in columns}
    checks: dict[int, SqlCheck] = {}
    for position, exp in expectations:
        try:
            checks[position] = translate(exp["type"], exp["kwargs"], types, parameters)
        except Untranslatable as exc:
            out.for_gx[position] = str(exc)
    return checks


def _answers(
    cursor: duckdb.DuckDBPyConnection,
    registered: _Registered,
    checks: Mapping[int, SqlCheck],
    repeated: bool = True,
) -> dict[int, dict[str, Any] | str]:
    """Per check: its counts and failing positions, or the error DuckDB raised for it (``repeated``:
    see :func:`_query`)."""
    if not checks:
        return {}
    try:
        return dict(zip(checks, _query(cursor, registered, list(checks.values()), repeated), strict=True))
    except duckdb.Error:
        pass
    # one of them raised: ask again one by one, so that the error lands on the expectation it belongs to
    answers: dict[int, dict[str, Any] | str] = {}
    for position, check in checks.items():
        try:
            answers[position] = _query(cursor, registered, [check], repeated)[0]
        except duckdb.Error as exc:
            answers[position] = f"DuckDB: {type(exc).__name__}: {exc}"
    return answers


def _query(
    cursor: duckdb.DuckDBPyConnection,
    registered: _Registered,
    checks: list[SqlCheck],
    repeated: bool = True,
) -> list[dict[str, Any]]:
    """Per check: elements, missing, undecided, failing positions.

    ``repeated=False`` (a chunk of a table, :class:`ChunkedHalf`): a uniqueness check's failing rows are
    left empty, since repeats are found over the whole table.

    One scan projects a boolean column per distinct condition (the rows looked at, the rows missing, the
    failing rows) and numpy counts them: on small tables an order of magnitude faster than
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
        plan.append(
            (
                None if check.domain == "TRUE" else column(check.domain),
                None if check.missing == "FALSE" else column(check.missing),
                None if check.unique_key else column(check.unexpected),
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
    for check, (domain_alias, missing_alias, unexpected_alias) in zip(checks, plan, strict=True):
        domain, _ = true(domain_alias, everywhere)  # a null condition leaves the row out, as in pandas
        missing, _ = true(missing_alias, nowhere)
        looked_at = domain & ~missing
        if check.unique_key:
            failing_positions = (
                _repeated(cursor, registered, check) if repeated else np.empty(0, dtype=np.int64)
            )
            undecided_count = 0
        else:
            failing, undecided = true(unexpected_alias, nowhere)
            failing_positions = positions[looked_at & failing]
            undecided_count = int((looked_at & undecided).sum())
        answers.append(
            {
                "elements": int(domain.sum()),
                "missing": int((domain & missing).sum()),
                "undecided": undecided_count,
                "unexpected": np.sort(failing_positions),
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


def _values(frame: pd.DataFrame, columns: tuple[str, ...], positions: Any) -> list[Any]:
    """The failing rows' values as GX lists them: a value, a pair (tuple), or a record (dict)."""
    picked = {c: [_python(v) for v in frame[c].iloc[positions].tolist()] for c in columns}
    if len(columns) == 1:
        return picked[columns[0]]
    if len(columns) == 2:
        return list(zip(picked[columns[0]], picked[columns[1]], strict=True))
    return [dict(zip(columns, row, strict=True)) for row in zip(*picked.values(), strict=True)]


class FailingValues:
    """The values of a check's failing rows as a GX result reports them: the first ``limit``, and the
    ``limit`` most frequent with their counts (GX: ``partial_unexpected_counts``).

    Added part by part (a table read in chunks), keeping the first few and a count per distinct value
    rather than every value: a check failing on 10^6 rows held 10^6 values for a sample of 20 (issue 16
    item 2). The counts are those of all the values at once: a Counter updated in the rows' order
    breaks ties in most_common as one built from the whole list does.
    """

    def __init__(self, limit: int, values: list[Any] | None = None) -> None:
        self._limit = limit
        self.first: list[Any] = []
        self._counts: Counter[Any] = Counter()
        self._unhashable = False
        if values:
            self.add(values)

    def add(self, values: list[Any]) -> None:
        self.first.extend(values[: self._limit - len(self.first)])
        if not self._unhashable:
            try:
                self._counts.update(tuple(v.values()) if isinstance(v, dict) else v for v in values)
            except TypeError:
                self._unhashable = True

    def counts(self) -> list[dict[str, Any]]:
        error = [{"error": "partial_exception_counts requires a hashable type"}]
        if self._unhashable:
            return error
        try:
            common = self._counts.most_common(self._limit)
            return [{"value": k, "count": n} for k, n in sorted(common, key=lambda kv: (-kv[1], kv[0]))]
        except TypeError:
            return error


def _columns_result(
    position: int, config: CheckedExpectation, check: SqlCheck, actual: list[object]
) -> CheckResult:
    """``expect_table_columns_to_match_set`` as GX decides it (the frame's column names)."""
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
    return CheckResult(position, success, config, result, dict(_NO_EXCEPTION))


def _type_result(
    position: int, config: CheckedExpectation, check: SqlCheck, frame: pd.DataFrame
) -> CheckResult:
    """``expect_column_type_to_be``: the registered DuckDB type of the column against the expected one."""
    dtype = str(frame[check.columns[0]].dtype)
    registered = GX_TYPE_TO_REGISTERED.get(dtype)
    return CheckResult(
        position, registered == check.expected, config, {"observed_value": dtype}, dict(_NO_EXCEPTION)
    )


def _error_result(position: int, config: CheckedExpectation, message: str) -> CheckResult:
    return CheckResult(
        position,
        False,
        config,
        {},
        {"raised_exception": True, "exception_message": message, "exception_traceback": None},
    )


#: rows of repeated keys fetched at a time
_KEY_ROWS = 65_536
_NO_ROWS = np.empty(0, dtype=np.int64)


class ChunkedHalf:
    """One half of a table's suite evaluated chunk by chunk (:mod:`cohortpool.validate.chunks`).

    Every answer of a row check is a sum over rows (elements, missing, undecided) or a list of failing
    positions, so a chunk's answer is added to the others' with its positions moved by the chunk's
    offset; the failing rows' values are taken from the chunk they are in. Uniqueness is not a property
    of a chunk: the key of every row looked at goes into a table of ``connection`` (a database on disk,
    which DuckDB spills to within its memory limit), and the repeats are found there once the last chunk
    is in. The result is the one :meth:`SqlEngine.run_half` gives on the whole table
    (``tests/unit/test_validate_chunks.py``).
    """

    def __init__(
        self,
        engine: SqlEngine,
        connection: duckdb.DuckDBPyConnection,
        expectations: list[tuple[int, dict[str, Any]]],
        configs: Mapping[int, CheckedExpectation],
        dtypes: Mapping[str, str],
        parameters: Mapping[str, Any],
        publish_values: bool,
    ) -> None:
        self._engine = engine
        self._connection = connection
        self._configs = configs
        self._publish = publish_values
        self.out = HalfRun()
        self._checks = translate_half(expectations, dtypes, parameters, self.out) if expectations else {}
        self._rows = {p: c for p, c in self._checks.items() if c.kind == ROWS}
        self._answers: dict[int, dict[str, Any] | str] = {}
        self._values: dict[int, FailingValues] = {}
        self._first: pd.DataFrame | None = None
        self._keys = {p: f"cohortpool_keys_{id(self)}_{p}" for p, c in self._rows.items() if c.unique_key}

    @property
    def needs_gx(self) -> bool:
        """Whether an expectation must run with GX (the table is then validated whole)."""
        return bool(self.out.for_gx)

    def add(self, frame: pd.DataFrame, offset: int) -> None:
        """Evaluate the chunk ``frame``, whose first row is row ``offset`` of the table."""
        if self._first is None:
            self._first = frame.iloc[0:0]
        if not self._rows:
            return
        dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
        cursor = self._connection.cursor()
        view = f"cohortpool_chunk_{id(self)}"
        try:
            registered = _register(cursor, view, frame, dtypes)
            answers = _answers(cursor, registered, self._rows, repeated=False)
            for position, answer in answers.items():
                self._merge(position, answer, frame, offset)
            for position, table in self._keys.items():
                if not isinstance(self._answers.get(position), str):
                    self._keep_keys(cursor, registered, self._rows[position], table, offset)
            cursor.unregister(view)
        finally:
            cursor.close()

    def _merge(self, position: int, answer: dict[str, Any] | str, frame: pd.DataFrame, offset: int) -> None:
        before = self._answers.get(position)
        if isinstance(before, str):
            return  # the first error stands
        if isinstance(answer, str) or before is None:
            if not isinstance(answer, str):
                # the chunks' failing positions, concatenated in finish()
                answer = dict(answer, unexpected=[answer["unexpected"] + offset])
                self._add_values(position, frame, answer["unexpected"][0] - offset)
            self._answers[position] = answer
            return
        for count in ("elements", "missing", "undecided"):
            before[count] += answer[count]
        before["unexpected"].append(answer["unexpected"] + offset)
        self._add_values(position, frame, answer["unexpected"])

    def _add_values(self, position: int, frame: pd.DataFrame, local: np.ndarray) -> None:
        if self._publish and len(local):
            check = self._rows[position]
            found = self._values.setdefault(position, FailingValues(self._engine._partial))
            found.add(_values(frame, check.value_columns, local))

    def _keep_keys(
        self,
        cursor: duckdb.DuckDBPyConnection,
        registered: _Registered,
        check: SqlCheck,
        table: str,
        offset: int,
    ) -> None:
        """The chunk's rows looked at by a uniqueness check: position and key, into ``table``."""
        key = ", ".join(quote(c) for c in check.unique_key)
        select = (
            f"SELECT {quote(registered.position_column)} + {int(offset)} AS p, {key} "
            f"FROM {quote(registered.name)} WHERE ({check.domain}) AND NOT ({check.missing})"
        )
        try:
            if offset == 0 or not _exists(cursor, table):
                cursor.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS {select}")
            else:
                cursor.execute(f"INSERT INTO {quote(table)} {select}")
        except duckdb.Error as exc:
            self._answers[check_position(self._rows, check)] = f"DuckDB: {type(exc).__name__}: {exc}"

    def finish(self) -> HalfRun:
        """The half's results, once every chunk is in (an empty table is one empty chunk)."""
        assert self._first is not None, "finish() before any chunk"
        cursor = self._connection.cursor()
        try:
            for position, table in self._keys.items():
                answer = self._answers.get(position)
                if answer is None or isinstance(answer, str):
                    continue
                check = self._rows[position]
                key = ", ".join(quote(c) for c in check.unique_key)
                on = " AND ".join(f"k.{quote(c)} IS NOT DISTINCT FROM r.{quote(c)}" for c in check.unique_key)
                query = (
                    f"WITH r AS (SELECT {key} FROM {quote(table)} GROUP BY {key} HAVING count(*) > 1) "
                    f"SELECT k.p, {', '.join(f'k.{quote(c)}' for c in check.unique_key)} "
                    f"FROM {quote(table)} k SEMI JOIN r ON {on} ORDER BY k.p"
                )
                # the repeated keys part by part: every row of a night can repeat its key
                failing: list[np.ndarray] = []
                values = FailingValues(self._engine._partial)
                try:
                    reader: pa.RecordBatchReader = cursor.sql(query).to_arrow_reader(_KEY_ROWS)
                    for batch in reader:
                        failing.append(np.asarray(batch.column("p").to_numpy(zero_copy_only=False)))
                        if self._publish and batch.num_rows:
                            part = pa.Table.from_batches([batch]).drop(["p"])
                            keys = _as_frame(part, self._first)
                            values.add(_values(keys, check.value_columns, np.arange(len(keys))))
                except duckdb.Error as exc:
                    self._answers[position] = f"DuckDB: {type(exc).__name__}: {exc}"
                    continue
                answer["unexpected"] = failing
                if values.first:
                    self._values[position] = values
                cursor.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            for answer in self._answers.values():
                if not isinstance(answer, str):
                    parts = answer["unexpected"]
                    answer["unexpected"] = np.sort(np.concatenate(parts)) if parts else _NO_ROWS
            self._engine.finish_half(
                self._checks, self._configs, self._answers, self._values, self._first, self._publish, self.out
            )
        finally:
            cursor.close()
        return self.out


def check_position(checks: Mapping[int, SqlCheck], check: SqlCheck) -> int:
    """The suite position of ``check``."""
    return next(p for p, c in checks.items() if c is check)


def _exists(cursor: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = cursor.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()
    return bool(found and found[0])


def _as_frame(table: pa.Table, like: pd.DataFrame) -> pd.DataFrame:
    """Arrow columns back as the pandas dtypes of ``like`` (the values GX lists keep their Python types)."""
    columns: dict[str, pd.Series] = {}
    for name in table.column_names:
        dtype = str(like[name].dtype)
        array = table.column(name)
        if dtype == "str":
            columns[name] = pd.Series(array.to_pylist(), dtype=object).astype(like[name].dtype)
        elif dtype == "Int64":
            columns[name] = pd.Series(array.to_pylist(), dtype="Int64")
        else:
            columns[name] = array.to_pandas().astype(like[name].dtype)
    return pd.DataFrame(columns)
