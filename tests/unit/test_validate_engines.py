"""The DuckDB engine (SQL generated from the suites) and GX on pandas report the same thing.

Both engines run the same suites on the same frames; every test compares what each reports per row
(source row, expectation, severity), per expectation (success, unexpected count, error) and per result
(elements looked at, missing), and checks that the SQL engine really ran the expectations itself (it may
hand an expectation to GX, and then it says so). The planted rows are those of
``test_validate_expectations.py`` (one defect per expectation of every reviewed suite); the synthetic
consortium's planted defects are compared in ``tests/integration/test_validate_consortium.py``.
"""

from __future__ import annotations

import math
import random
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from test_validate_expectations import _plant

from cohortpool.validate import sqlrun
from cohortpool.validate.frames import TableFrames, read_table
from cohortpool.validate.run import SuiteRunner, TableRun
from cohortpool.validate.sqlgen import (
    SqlCheck,
    Untranslatable,
    regex_to_re2,
    strftime_sql,
    translate,
    unicode_digits,
)
from cohortpool.validate.suites import TABLES, TableSuite, load_suite


@pytest.fixture(scope="module")
def runners() -> dict[str, SuiteRunner]:
    return {"duckdb": SuiteRunner("duckdb"), "gx": SuiteRunner("gx")}


def _rows(run: TableRun) -> list[tuple[Any, ...]]:
    return sorted((str(f.position), f.expectation, f.severity, f.reason, f.value) for f in run.findings)


def _outcomes(run: TableRun) -> list[tuple[Any, ...]]:
    return [(o.expectation, o.success, o.unexpected_count, o.errored is not None) for o in run.outcomes]


def _counts(run: TableRun) -> list[tuple[Any, ...]]:
    return [
        (half, r.expectation_config.type, r.result.get("element_count"), r.result.get("missing_count"))
        for half, results in sorted(run.results.items())
        for r in results.results
    ]


def _assert_same(sql: TableRun, gx: TableRun) -> None:
    assert _rows(sql) == _rows(gx)
    assert _outcomes(sql) == _outcomes(gx)
    assert _counts(sql) == _counts(gx)


@pytest.mark.parametrize("table", TABLES)
def test_both_engines_flag_the_same_rows_of_every_planted_defect(
    table: str, runners: dict[str, SuiteRunner], tmp_path: Path
) -> None:
    folder, expected = _plant(table, tmp_path)
    suite = load_suite(table)
    frames = read_table(folder, suite)
    sql = runners["duckdb"].run(suite, frames, "site02")
    gx = runners["gx"].run(suite, frames, "site02")
    assert sql.by_gx == {}, "the SQL engine handed reviewed expectations to GX"
    assert not sql.errored and not gx.errored
    _assert_same(sql, gx)
    flagged = {(int(f.position) + 1, f.expectation) for f in sql.findings if f.position is not None}
    assert {pair for pair in expected} <= flagged  # every planted row (duplicates: both copies flagged)


# ---- a hand-made table of edge cases: nulls in conditions and keys, inf, strictness, odd text ---------

NAN = float("nan")
TYPED_COLUMNS: dict[str, tuple[str, list[Any]]] = {
    "code": ("str", ["a", "b", None, "a", "c", "b", "P\n", "P", "A", "b", "a", None]),
    "grade": ("Int64", [0, 1, None, 2, 0, 3, 1, 1, 2, None, 0, 1]),
    "score": ("float64", [1.0, 10.0, 0.0, math.inf, -1.0, NAN, 5.0, 5.0, 11.0, 3.0, 2.0, 10.0]),
    "low": ("float64", [0.5, 10.0, None, 1.0, 2.0, 1.0, 6.0, 5.0, None, 4.0, 1.0, 9.0]),
    "k1": ("str", ["x", "x", None, None, "y", "y", "z", "z", None, "x", "w", "w"]),
    "k2": ("str", ["1", "1", "1", None, None, "2", "3", "3", None, "1", "9", "8"]),
}
DATES = [
    "2023-02-29",
    "2024-02-29",
    "2023-1-5",
    "2023-01- 5",
    "0000-01-01",
    "9999-12-31",
    "2023-13-01",
    "2023-01-32",
    "2023-01-01 ",
    None,
    "20230101",
    "2023-10-10",
]
#: dates GX (strptime) reads with any Unicode digit where Python's \d stands: a year, a day's second digit
UNICODE_DATES = [
    "２０２３-01-01",
    "٢٠٢٣-02-1٩",
    "२०२४-02-29",
    "２０２３-02-29",
    "2023-01-3５",
    "2023-1２-01",
    "2023-01-0é",
]
TEXT_COLUMNS = {"d_ascii": DATES, "d_unicode": [*UNICODE_DATES, *DATES[len(UNICODE_DATES) :]]}

TRANSLATED = [
    ("expect_column_values_to_not_be_null", {"column": "code"}),
    ("expect_column_values_to_be_null", {"column": "code", "row_condition": "grade==0"}),
    ("expect_column_values_to_be_in_set", {"column": "code", "value_set": ["a", "b"]}),
    (
        "expect_column_values_to_be_in_set",
        {"column": "code", "value_set": {"$PARAMETER": "site_ids"}, "row_condition": 'grade>=1 and k1=="x"'},
    ),
    ("expect_column_values_to_be_in_set", {"column": "grade", "value_set": [0, 1, 2]}),
    ("expect_column_values_to_be_between", {"column": "score", "min_value": 0, "max_value": 10}),
    (
        "expect_column_values_to_be_between",
        {"column": "score", "min_value": 0.0, "max_value": 10.0, "strict_min": True, "strict_max": True},
    ),
    ("expect_column_values_to_be_between", {"column": "grade", "min_value": 1, "row_condition": 'code=="a"'}),
    (
        "expect_column_values_to_be_between",
        {"column": "score", "max_value": 5, "row_condition": 'code in ["a", "b"]'},
    ),
    ("expect_column_values_to_match_regex", {"column": "code", "regex": "^[ab]$"}),
    ("expect_column_values_to_match_regex", {"column": "code", "regex": "^P$"}),
    ("expect_column_values_to_match_regex", {"column": "code", "regex": "a|P"}),
    ("expect_column_values_to_be_unique", {"column": "code"}),
    ("expect_column_values_to_be_unique", {"column": "grade", "row_condition": 'code=="a" | code=="b"'}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["k1", "k2"]}),
    (
        "expect_compound_columns_to_be_unique",
        {"column_list": ["k1", "k2"], "ignore_row_if": "any_value_is_missing"},
    ),
    ("expect_compound_columns_to_be_unique", {"column_list": ["k1", "k2"], "ignore_row_if": "never"}),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "score", "column_B": "low", "ignore_row_if": "either_value_is_missing"},
    ),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {
            "column_A": "score",
            "column_B": "low",
            "or_equal": True,
            "ignore_row_if": "either_value_is_missing",
            "row_condition": "grade==1 or grade==2",
        },
    ),
    ("expect_column_type_to_be", {"column": "grade", "type_": "Int64"}),
    ("expect_column_type_to_be", {"column": "score", "type_": "Int64"}),
    ("expect_table_columns_to_match_set", {"column_set": ["code", "grade", "score", "missing_one"]}),
    (
        "expect_table_columns_to_match_set",
        {"column_set": ["code", "grade", "score", "low", "k1", "k2", "spare"], "exact_match": False},
    ),
    ("expect_column_values_to_match_strftime_format", {"column": "d_ascii", "strftime_format": "%Y-%m-%d"}),
    ("expect_column_values_to_match_strftime_format", {"column": "d_unicode", "strftime_format": "%Y-%m-%d"}),
]
#: no exact SQL for these: the SQL engine must hand each to GX (and say so)
FOR_GX = [
    ("expect_column_values_to_be_in_set", {"column": "code", "value_set": ["a"], "mostly": 0.5}),
    ("expect_column_values_to_not_be_null", {"column": "code", "row_condition": 'code!="a"'}),
    ("expect_column_value_lengths_to_be_between", {"column": "code", "min_value": 1, "max_value": 1}),
]


def _edge_suite(expectations: list[tuple[str, dict[str, Any]]], name: str) -> TableSuite:
    exps = []
    for exp_type, kwargs in expectations:
        if "row_condition" in kwargs:
            kwargs = {**kwargs, "condition_parser": "pandas"}
        meta: dict[str, Any] = {"severity": "error", "reason": f"{exp_type} failed"}
        if exp_type.endswith("strftime_format"):
            meta["applies_to"] = "text"
        exps.append({"type": exp_type, "kwargs": kwargs, "meta": meta})
    return TableSuite(
        table="edge",
        name=f"test.{name}",
        path=Path(f"/no/such/suite/{name}.json"),
        meta={"owner": "test", "rationale": "edge cases", "table": "edge", "key": ["code"]},
        expectations=tuple(exps),
        column_types={c: t for c, (t, _) in TYPED_COLUMNS.items()},
    )


def _edge_frames() -> TableFrames:
    typed = pd.DataFrame({c: pd.Series(v, dtype=t) for c, (t, v) in TYPED_COLUMNS.items()})
    text = pd.DataFrame({c: pd.Series(v, dtype="str") for c, v in TEXT_COLUMNS.items()})
    return TableFrames("edge", "edge.csv", "0" * 64, text, typed)


def test_both_engines_agree_on_edge_cases_and_sql_runs_every_translatable_one(
    runners: dict[str, SuiteRunner],
) -> None:
    suite = _edge_suite(TRANSLATED + FOR_GX, "edges")
    frames = _edge_frames()
    sql = runners["duckdb"].run(suite, frames, "b")
    gx = runners["gx"].run(suite, frames, "b")
    assert not sql.errored and not gx.errored, [o.errored for o in sql.errored + gx.errored]
    _assert_same(sql, gx)
    assert len(sql.by_gx) == len(FOR_GX), sql.by_gx
    # the cases are not vacuous: most of them flag rows
    assert sum(not o.success for o in sql.outcomes) >= 20


def test_a_duckdb_error_is_an_error_of_that_expectation_not_a_pass(runners: dict[str, SuiteRunner]) -> None:
    # Python's re accepts nested repeats RE2 refuses (DuckDB: "invalid repetition size")
    suite = _edge_suite(
        [
            ("expect_column_values_to_match_regex", {"column": "code", "regex": "^(?:a{100}){100}$"}),
            ("expect_column_values_to_not_be_null", {"column": "code"}),
        ],
        "duckdb-error",
    )
    run = runners["duckdb"].run(suite, _edge_frames(), "b")
    assert [o.expectation for o in run.errored] == ["column_values_to_match_regex(code)"]
    assert "DuckDB" in (run.errored[0].errored or "")
    assert [f.position for f in run.findings if "could not be evaluated" in f.reason] == [None]
    # the other expectation of the half still ran in SQL, from the same query
    assert [o.unexpected_count for o in run.outcomes if not o.errored] == [2]


def test_rows_the_sql_cannot_decide_are_an_error(
    runners: dict[str, SuiteRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    def undecided(*args: Any) -> SqlCheck:
        check = translate(*args)
        return SqlCheck(check.kind, check.domain, check.missing, "CAST(NULL AS BOOLEAN)", counts_missing=True)

    monkeypatch.setattr(sqlrun, "translate", undecided)
    suite = _edge_suite(
        [("expect_column_values_to_be_in_set", {"column": "code", "value_set": ["a"]})], "nulls"
    )
    run = SuiteRunner("duckdb").run(suite, _edge_frames(), "b")
    assert run.errored and "neither passed nor failed 10 row(s)" in (run.errored[0].errored or "")


def test_a_column_of_a_dtype_the_engine_does_not_map_sends_the_half_to_gx(
    runners: dict[str, SuiteRunner],
) -> None:
    frames = _edge_frames()
    frames.typed["code"] = frames.typed["code"].astype(object)
    suite = _edge_suite([("expect_column_type_to_be", {"column": "code", "type_": "str"})], "object")
    sql = runners["duckdb"].run(suite, frames, "b")
    assert list(sql.by_gx) == ["column_type_to_be(code)"]
    assert [o.success for o in sql.outcomes] == [False]  # GX: object is not str
    _assert_same(sql, runners["gx"].run(suite, frames, "b"))


# ---- the translations themselves, against Python on many strings -------------------------------------

PATTERNS = [
    "^P[0-9A-F]{16}$",
    "^-?[0-9]+$",
    "^-?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)$",
    "^2[.]25[.][0-9]{1,39}$",
    "^a.b$",
    "x|y$",
    "^(ab)+?c",
    "[^0-9]",
    r"\.\-",
    "a{2,}",
    "a{,2}b",
    "^$",
    "(?P<n>a)b",
]
REFUSED = [r"\d", r"\w+", r"\s", r"a\b", "(?=a)", r"(a)\1", "a*+", "[[:digit:]]", r"\Z", "(?i)a", "a{"]


@pytest.mark.parametrize("pattern", REFUSED)
def test_regex_constructs_that_differ_between_python_and_re2_are_refused(pattern: str) -> None:
    with pytest.raises(Untranslatable):
        regex_to_re2(pattern)


def test_translated_regexes_match_what_python_re_search_matches() -> None:
    rng = random.Random(7)
    alphabet = "aAbPxy0129.-\n é٣"
    values = ["", "\n", "P\n", "a\nb", "P0123456789ABCDEF", "P0123456789ABCDEF\n", "2.25.1", "ab", "abab c"]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(400)]
    con = duckdb.connect()
    for pattern in PATTERNS:
        got = [
            r[0]
            for r in con.execute(
                "SELECT regexp_matches(v, ?) FROM unnest(?) WITH ORDINALITY t(v, i) ORDER BY i",
                [regex_to_re2(pattern), values],
            ).fetchall()
        ]
        want = [re.search(pattern, v) is not None for v in values]
        wrong = [v for v, g, w in zip(values, got, want, strict=True) if g != w]
        assert wrong == [], pattern


def _strptime_ok(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")  # the reference: what GX calls
    except ValueError:
        return False
    return True


def test_strftime_translation_matches_datetime_strptime_on_any_text() -> None:
    """ASCII and Unicode digits (every one Python's \\d takes, and where strptime's pattern has ASCII
    classes), letters, marks and spaces: the SQL says what ``datetime.strptime`` says."""
    rng = random.Random(11)
    digits = unicode_digits()[0]
    values = [v for v in DATES if v] + ["2000-02-29", "1900-02-29", "0001-01-01", "2023-1-31", "2023-01-3"]
    values += UNICODE_DATES + [f"{d * 4}-01-1{d}" for d in digits]  # every digit, as a year and a day
    values += ["".join(rng.choice("0123456789- ") for _ in range(rng.randint(0, 11))) for _ in range(3000)]
    values += [f"{rng.randint(0, 9999):04d}-{rng.randint(0, 13)}-{rng.randint(0, 32)}" for _ in range(3000)]
    alphabet = "0123456789-  " + digits[10:40] + "２٣९\u0301é\u00a0\u2009Ⅻ¹"  # marks, odd spaces, numerals
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 11))) for _ in range(3000)]
    values += [
        "".join(rng.choice(digits) if c.isdigit() and rng.random() < 0.3 else c for c in v)
        for v in (
            f"{rng.randint(1, 9999):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 31):02d}"
            for _ in range(3000)
        )
    ]
    con = duckdb.connect()
    con.register("t", pd.DataFrame({"v": values, "i": range(len(values))}))
    got = [r[0] for r in con.execute(f"SELECT {strftime_sql('v', '%Y-%m-%d')} FROM t ORDER BY i").fetchall()]
    wrong = [v for v, g in zip(values, got, strict=True) if g != _strptime_ok(v)]
    assert wrong == []
    assert sum(got) > 1000  # the generated values are not all invalid
    assert sum(g for v, g in zip(values, got, strict=True) if not v.isascii()) > 500  # nor the Unicode ones


@pytest.mark.parametrize(
    ("exp_type", "kwargs"),
    [
        ("expect_column_values_to_be_in_set", {"column": "code", "value_set": [1, 2]}),
        ("expect_column_values_to_be_in_set", {"column": "code", "value_set": [True]}),
        ("expect_column_values_to_be_between", {"column": "score"}),
        ("expect_column_values_to_be_between", {"column": "score", "min_value": 5, "max_value": 1}),
        ("expect_column_values_to_match_strftime_format", {"column": "code", "strftime_format": "%H:%M"}),
        ("expect_column_values_to_match_strftime_format", {"column": "code", "strftime_format": "%d %b %Y"}),
        ("expect_column_values_to_be_in_set", {"column": "code", "value_set": {"$PARAMETER": "unset"}}),
        (
            "expect_column_values_to_not_be_null",
            {"column": "code", "row_condition": "not code=='a'", "condition_parser": "pandas"},
        ),
        ("expect_column_values_to_not_be_null", {"column": "code", "row_condition": 'code=="a"'}),
        ("expect_column_values_to_not_be_null", {"column": "nowhere"}),
        (
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "score", "column_B": "low", "ignore_row_if": "neither"},
        ),
    ],
)
def test_what_has_no_exact_translation_is_refused(exp_type: str, kwargs: dict[str, Any]) -> None:
    types = {"code": "VARCHAR", "score": "DOUBLE", "low": "DOUBLE"}
    with pytest.raises(Untranslatable):
        translate(exp_type, kwargs, types, {})
