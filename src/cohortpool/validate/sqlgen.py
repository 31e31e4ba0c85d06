"""Translate a suite's expectations into DuckDB SQL, from each expectation's type and kwargs.

Why: Great Expectations on pandas costs about a second per table whatever its size, and about ten seconds
for 10^6 rows (``benchmarks/RESULTS.md``). The same checks as one DuckDB query take a fraction of that.
The reviewed suite JSON stays the only definition of the contract: nothing here names a table or a
column; each supported expectation type has one translation rule, and the meaning of every rule is GX's
pandas semantics (which rows are looked at, which are left out as missing, which are unexpected):

- a row condition (pandas ``DataFrame.query`` syntax) selects the rows looked at; a row whose condition is
  null (a comparison with a missing value) is not looked at, as in pandas;
- column map expectations leave missing values out (``missing``), except the null checks themselves;
- ``expect_column_values_to_match_regex`` uses Python's ``re.search``; the pattern is rewritten for RE2
  (DuckDB's engine) only where both engines mean the same thing (``$`` also matches before a final
  newline in Python), and refused where they may not (``\\d``, ``\\w``, ``\\s`` and ``\\b`` are Unicode
  in Python, lookarounds and backreferences do not exist in RE2, ...);
- ``expect_column_values_to_match_strftime_format`` follows ``datetime.strptime``: the regular expression
  Python builds for the format, matched from the start and required to consume the whole value, then a
  real calendar date from year 1. Python's ``\\d`` accepts any Unicode digit there (``int()`` reads it),
  so the SQL matches the same characters and translates them to ASCII digits before reading the number
  (:func:`unicode_digits`): a year in fullwidth digits is a date to both.

Anything else (another type, another kwarg such as ``mostly``, a literal whose type does not fit the
column, a construct outside the subsets above) raises :class:`Untranslatable`: the engine then runs that
expectation with GX. Nothing is ever silently skipped.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
import unicodedata
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

#: DuckDB types of the registered frames (see :mod:`cohortpool.validate.sqlrun`) by kind of value
TEXT_TYPES = frozenset({"VARCHAR"})
NUMBER_TYPES = frozenset({"BIGINT", "DOUBLE", "INTEGER"})

TABLE_COLUMNS = "table_columns"
COLUMN_TYPE = "column_type"
ROWS = "rows"

_CONDITION_KWARGS = frozenset({"row_condition", "condition_parser"})
#: kwargs each row-level type may carry (anything else, e.g. ``mostly``, is untranslatable)
_ROW_KWARGS: dict[str, frozenset[str]] = {
    "expect_column_values_to_not_be_null": frozenset({"column"}),
    "expect_column_values_to_be_null": frozenset({"column"}),
    "expect_column_values_to_be_in_set": frozenset({"column", "value_set"}),
    "expect_column_values_to_be_between": frozenset(
        {"column", "min_value", "max_value", "strict_min", "strict_max"}
    ),
    "expect_column_values_to_match_regex": frozenset({"column", "regex"}),
    "expect_column_values_to_match_strftime_format": frozenset({"column", "strftime_format"}),
    "expect_column_values_to_be_unique": frozenset({"column"}),
    "expect_compound_columns_to_be_unique": frozenset({"column_list", "ignore_row_if"}),
    "expect_column_pair_values_a_to_be_greater_than_b": frozenset(
        {"column_A", "column_B", "or_equal", "ignore_row_if"}
    ),
}
_TABLE_KWARGS: dict[str, frozenset[str]] = {
    "expect_table_columns_to_match_set": frozenset({"column_set", "exact_match"}),
    "expect_column_type_to_be": frozenset({"column", "type_"}),
}
#: the GX type names cohortpool's suites use -> the DuckDB type a registered frame column then has
GX_TYPE_TO_REGISTERED = {
    "str": "VARCHAR",
    "Int64": "BIGINT",
    "float64": "DOUBLE",
    "datetime64[us]": "TIMESTAMP",
}


class Untranslatable(ValueError):
    """This expectation has no exact SQL translation here; run it with GX instead."""


@dataclass(frozen=True)
class SqlCheck:
    """One expectation as SQL over a registered table whose columns keep their names.

    For ``kind == "rows"``: ``domain`` selects the rows the expectation looks at, ``missing`` those of them
    it leaves out (``FALSE`` for the null checks), ``unexpected`` flags the failing rows among the rest;
    ``unique_key`` (uniqueness) names the columns whose repeated values, among the rows looked at, are the
    failing rows; ``unexpected`` is then empty. ``value_columns`` are the columns whose values GX reports
    for a failing row (one: the value; two: a pair; more: a record). For the table-level kinds,
    ``expected`` is the column set (``table_columns``, with ``exact``) or the DuckDB type (``column_type``).
    """

    kind: str
    domain: str = "TRUE"
    missing: str = "FALSE"
    unexpected: str = "FALSE"
    unique_key: tuple[str, ...] = ()
    value_columns: tuple[str, ...] = ()
    expected: Any = None
    exact: bool = True
    columns: tuple[str, ...] = field(default_factory=tuple)
    #: GX reports missing values (missing_count, ...) for every map expectation but the null checks
    counts_missing: bool = True


def quote(name: str) -> str:
    """A DuckDB identifier for any column name."""
    return '"' + name.replace('"', '""') + '"'


def _text_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _literal(value: Any, sql_type: str, what: str) -> str:
    """A SQL literal of ``value`` compared with a column of ``sql_type``, or Untranslatable."""
    if isinstance(value, bool) or value is None:
        raise Untranslatable(f"{what}: {value!r} (booleans and nulls compare differently in pandas)")
    if isinstance(value, str) and sql_type in TEXT_TYPES:
        return _text_literal(value)
    if isinstance(value, int) and sql_type in NUMBER_TYPES:
        return str(value)
    if isinstance(value, float) and sql_type in NUMBER_TYPES and value == value:
        return f"CAST('{value!r}' AS DOUBLE)"
    raise Untranslatable(f"{what}: {value!r} does not fit a {sql_type} column")


def _column(name: Any, column_types: Mapping[str, str]) -> str:
    if not isinstance(name, str) or name not in column_types:
        raise Untranslatable(f"no column {name!r} in the table")
    return name


# ---- row conditions (pandas DataFrame.query syntax) ---------------------------------------------------

_COMPARE = {ast.Eq: "=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def condition_sql(condition: str, column_types: Mapping[str, str]) -> tuple[str, set[str]]:
    """A pandas ``query`` condition as a SQL predicate, and the columns it reads.

    Only ``==``, ``<``, ``<=``, ``>``, ``>=`` and ``in [...]`` between a column and literals, joined by
    ``and``/``or``/``&``/``|``: there a missing value makes the comparison false in pandas and null in SQL,
    and both leave the row out. ``!=``, ``not`` and ``not in`` are refused: pandas counts a missing value as
    different, SQL does not.
    """
    try:
        tree = ast.parse(_pandas_booleans(condition), mode="eval").body
    except (SyntaxError, tokenize.TokenError) as exc:
        raise Untranslatable(f"row_condition {condition!r} is not a simple expression") from exc
    used: set[str] = set()

    def visit(node: ast.expr) -> str:
        if isinstance(node, ast.BoolOp):
            joiner = " AND " if isinstance(node.op, ast.And) else " OR "
            return "(" + joiner.join(visit(v) for v in node.values) + ")"
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, op, right = node.left, node.ops[0], node.comparators[0]
            if isinstance(op, ast.In) and isinstance(left, ast.Name):
                column = _column(left.id, column_types)
                if not isinstance(right, ast.List | ast.Tuple) or not right.elts:
                    raise Untranslatable(f"row_condition {condition!r}: `in` needs a literal list")
                values = [_constant(v, column_types[column], condition) for v in right.elts]
                used.add(column)
                return f"({quote(column)} IN ({', '.join(values)}))"
            if type(op) in _COMPARE:
                if isinstance(left, ast.Name) and isinstance(right, ast.Constant):
                    column, value, sql_op = left.id, right, _COMPARE[type(op)]
                elif isinstance(right, ast.Name) and isinstance(left, ast.Constant):
                    flipped = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
                    column, value, sql_op = right.id, left, flipped[_COMPARE[type(op)]]
                else:
                    raise Untranslatable(f"row_condition {condition!r}: compare a column with a literal")
                column = _column(column, column_types)
                used.add(column)
                return f"({quote(column)} {sql_op} {_constant(value, column_types[column], condition)})"
        raise Untranslatable(f"row_condition {condition!r}: {ast.dump(node)[:60]} is not supported")

    return visit(tree), used


def _pandas_booleans(condition: str) -> str:
    """The condition with ``&``/``|``/``~`` as ``and``/``or``/``not``: pandas' parser gives them the
    precedence of the boolean keywords (``a==1 | b==2`` is ``(a==1) or (b==2)``), Python's does not."""
    words = {"&": "and", "|": "or", "~": "not"}
    tokens = [
        (tokenize.NAME, words[tok.string]) if tok.type == tokenize.OP and tok.string in words else tok[:2]
        for tok in tokenize.generate_tokens(io.StringIO(condition.strip()).readline)
    ]
    return str(tokenize.untokenize(tokens)).strip()


def _constant(node: ast.expr, sql_type: str, condition: str) -> str:
    if not isinstance(node, ast.Constant):
        raise Untranslatable(f"row_condition {condition!r}: only literals can be compared")
    return _literal(node.value, sql_type, f"row_condition {condition!r}")


# ---- regular expressions: Python re -> RE2 -------------------------------------------------------------

#: escapes that mean the same single character in Python and RE2
_SAFE_ESCAPES = frozenset(".^$*+?()[]{}|\\-/&~#% ntrfv")
_QUANTIFIER = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")
_GROUP_NAME = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")
#: RE2's largest repeat count
_RE2_MAX_REPEAT = 1000


def regex_to_re2(pattern: str) -> str:
    """The RE2 pattern that flags exactly the strings ``re.search(pattern, s)`` flags, or Untranslatable."""
    try:
        with warnings.catch_warnings():
            # Python warns where a future version will read the pattern differently (nested sets)
            warnings.simplefilter("error", FutureWarning)
            re.compile(pattern)
    except (re.error, FutureWarning) as exc:
        raise Untranslatable(f"regex {pattern!r} is not a stable Python pattern: {exc}") from exc
    out: list[str] = []
    i = 0
    can_repeat = False  # is there an atom before this position that a quantifier may apply to?
    after_quantifier = False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if escaped not in _SAFE_ESCAPES or not escaped:
                raise Untranslatable(f"regex {pattern!r}: escape \\{escaped} differs between Python and RE2")
            out.append(char + escaped)
            i += 2
            can_repeat, after_quantifier = True, False
            continue
        if char == "[":
            end, text = _character_class(pattern, i)
            out.append(text)
            i = end
            can_repeat, after_quantifier = True, False
            continue
        if char == "(":
            if pattern.startswith("(?:", i):
                out.append("(?:")
                i += 3
            elif match := _GROUP_NAME.match(pattern, i):
                out.append(match.group(0))
                i = match.end()
            elif pattern.startswith("(?", i):
                raise Untranslatable(f"regex {pattern!r}: group {pattern[i : i + 4]!r} is not supported")
            else:
                out.append("(")
                i += 1
            can_repeat, after_quantifier = False, False
            continue
        if char in "*+?{":
            if char == "{":
                match = _QUANTIFIER.match(pattern, i)
                if match is None or not (match.group(1) or match.group(2)):
                    raise Untranslatable(f"regex {pattern!r}: a literal '{{' is not supported")
                low = int(match.group(1) or 0)
                high = match.group(3)
                if low > _RE2_MAX_REPEAT or (high and int(high) > _RE2_MAX_REPEAT):
                    raise Untranslatable(f"regex {pattern!r}: repeat count above {_RE2_MAX_REPEAT}")
                text = f"{{{low}{',' if match.group(2) else ''}{high or ''}}}"
                step = match.end() - i
            else:
                text, step = char, 1
            if after_quantifier and char == "?":
                out.append("?")  # lazy: the same in both engines
                i += 1
                after_quantifier = False
                continue
            if not can_repeat or after_quantifier:
                raise Untranslatable(f"regex {pattern!r}: quantifier at offset {i} is not supported")
            out.append(text)
            i += step
            can_repeat, after_quantifier = False, True
            continue
        if char == "$":
            # Python's $ also matches just before a final newline; RE2's (no multi-line) does not
            out.append(r"(?:\n?\z)")
            can_repeat, after_quantifier = False, False
        elif char == "^":
            out.append("^")
            can_repeat, after_quantifier = False, False
        elif char in ")|":
            out.append(char)
            can_repeat, after_quantifier = char == ")", False
        else:
            out.append(char)
            can_repeat, after_quantifier = True, False
        i += 1
    return "".join(out)


def _character_class(pattern: str, start: int) -> tuple[int, str]:
    """``pattern[start]`` opens a class: its end and its text, or Untranslatable."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        raise Untranslatable(f"regex {pattern!r}: ']' first in a class is not supported")
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if escaped not in _SAFE_ESCAPES or not escaped:
                raise Untranslatable(f"regex {pattern!r}: escape \\{escaped} in a class is not supported")
            i += 2
            continue
        if char == "[":
            raise Untranslatable(f"regex {pattern!r}: '[' inside a class (POSIX classes in RE2)")
        if char == "]":
            return i + 1, pattern[start : i + 1]
        i += 1
    raise Untranslatable(f"regex {pattern!r}: unterminated class")


# ---- strftime formats (datetime.strptime) --------------------------------------------------------------


@cache
def unicode_digits() -> tuple[str, str]:
    """Every character Python's ``\\d`` matches in a text pattern (Unicode category Nd, in this
    Python's Unicode version), and the ASCII digit ``int()`` reads each as, position for position.

    ``datetime.strptime`` matches ``%Y`` with ``\\d`` and converts with ``int()``, so a year or a day written
    in fullwidth or Arabic-Indic digits is a date to GX; the SQL matches the same characters (a class
    built from this list, not RE2's own Unicode tables, which may be of another version) and reads them
    with ``translate``.
    """
    chars = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Nd"]
    return "".join(chars), "".join(str(unicodedata.decimal(c)) for c in chars)


def _digit_class() -> str:
    """An RE2 class of :func:`unicode_digits`, as ranges of consecutive code points."""
    codes = [ord(c) for c in unicode_digits()[0]]
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "[" + "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]"


def _directives(digit: str) -> dict[str, str]:
    """Python 3.11 _strptime's patterns for the directives translated, ``\\d`` written as ``digit``."""
    return {
        "Y": f"({digit}{digit}{digit}{digit})",
        "m": "(1[0-2]|0[1-9]|[1-9])",
        "d": f"(3[0-1]|[1-2]{digit}|0[1-9]|[1-9]| [1-9])",
    }


def _strftime_pattern(strftime_format: str, digit: str) -> tuple[str, list[str]]:
    """The anchored pattern strptime builds for the format, and its directives in order."""
    directives = _directives(digit)
    pattern = ""
    order: list[str] = []
    i = 0
    while i < len(strftime_format):
        char = strftime_format[i]
        if char == "%":
            directive = strftime_format[i + 1 : i + 2]
            if directive not in directives or directive in order:
                raise Untranslatable(f"strftime format {strftime_format!r}: %{directive} is not supported")
            pattern += directives[directive]
            order.append(directive)
            i += 2
            continue
        if char.isspace() or char.isalpha() or not char.isascii():
            # Python turns whitespace into \s+ and matches letters ignoring case
            raise Untranslatable(f"strftime format {strftime_format!r}: {char!r} is not supported")
        pattern += re.escape(char)
        i += 1
    if sorted(order) != ["Y", "d", "m"]:
        raise Untranslatable(f"strftime format {strftime_format!r}: needs %Y, %m and %d")
    return _text_literal(f"^(?:{pattern})"), order


def _strftime_test(col: str, anchored: str, order: list[str], translated: tuple[str, str] | None) -> str:
    """SQL true where the value matches ``anchored`` whole and its numbers make a date from year 1;
    ``translated``: the digits to read as ASCII ones (SQL literals), if any."""
    number = {}
    for n, d in enumerate(order):
        part = f"trim(regexp_extract({col}, {anchored}, {n + 1}))"
        if translated is not None:
            part = f"translate({part}, {translated[0]}, {translated[1]})"
        number[d] = f"TRY_CAST({part} AS INTEGER)"
    # the match must be the whole value (strptime: "unconverted data remains"); compared in bytes
    return (
        f"regexp_matches({col}, {anchored}) "
        f"AND strlen(regexp_extract({col}, {anchored}, 0)) = strlen({col}) "
        f"AND {number['Y']} >= 1 "
        f"AND try(make_date({number['Y']}, {number['m']}, {number['d']})) IS NOT NULL"
    )


def strftime_sql(column: str, strftime_format: str) -> str:
    """SQL true where ``datetime.strptime(value, strftime_format)`` succeeds, whatever the text.

    ASCII values take ``[0-9]`` for ``\\d``; the others the class of every Unicode digit, read through
    ``translate``, much slower (every value paying it took the typical night of 10^6 reads from 15 to 77 s).
    DuckDB evaluates each branch of a CASE only on the rows that take it.
    """
    col = quote(column)
    ascii_pattern, order = _strftime_pattern(strftime_format, "[0-9]")
    unicode_pattern, _ = _strftime_pattern(strftime_format, _digit_class())
    digits = tuple(_text_literal(text) for text in unicode_digits())
    return (
        f"(CASE WHEN strlen({col}) = length({col}) "
        f"THEN {_strftime_test(col, ascii_pattern, order, None)} "
        f"ELSE {_strftime_test(col, unicode_pattern, order, (digits[0], digits[1]))} END)"
    )


# ---- expectations --------------------------------------------------------------------------------------


def _resolve(value: Any, parameters: Mapping[str, Any]) -> Any:
    if isinstance(value, dict) and set(value) == {"$PARAMETER"}:
        name = value["$PARAMETER"]
        if name not in parameters:
            raise Untranslatable(f"suite parameter {name!r} has no value")
        return parameters[name]
    return value


def _check_kwargs(exp_type: str, kwargs: Mapping[str, Any], allowed: frozenset[str]) -> None:
    extra = set(kwargs) - allowed
    if extra:
        raise Untranslatable(f"{exp_type}: kwargs {sorted(extra)} are not translated")


def translate(
    exp_type: str,
    kwargs: Mapping[str, Any],
    column_types: Mapping[str, str],
    parameters: Mapping[str, Any],
) -> SqlCheck:
    """The SQL of one expectation on a table with ``column_types`` (column -> DuckDB type).

    Raises :class:`Untranslatable` when there is no exact translation (module docstring).
    """
    if exp_type in _TABLE_KWARGS:
        _check_kwargs(exp_type, kwargs, _TABLE_KWARGS[exp_type])
        if exp_type == "expect_table_columns_to_match_set":
            column_set = _resolve(kwargs.get("column_set"), parameters)
            if not isinstance(column_set, list) or not all(isinstance(c, str) for c in column_set):
                raise Untranslatable(f"{exp_type}: column_set must be a list of names")
            # GX's default is True; an explicit null is falsy there (a subset match)
            exact = _resolve(kwargs.get("exact_match", True), parameters)
            return SqlCheck(TABLE_COLUMNS, expected=tuple(column_set), exact=bool(exact))
        type_name = _resolve(kwargs.get("type_"), parameters)
        if type_name not in GX_TYPE_TO_REGISTERED:
            raise Untranslatable(f"{exp_type}: type {type_name!r} is not one the engine registers")
        column = _column(kwargs.get("column"), column_types)
        return SqlCheck(COLUMN_TYPE, expected=GX_TYPE_TO_REGISTERED[type_name], columns=(column,))
    if exp_type not in _ROW_KWARGS:
        raise Untranslatable(f"expectation type {exp_type} has no SQL translation")
    _check_kwargs(exp_type, kwargs, _ROW_KWARGS[exp_type] | _CONDITION_KWARGS)
    domain = "TRUE"
    if kwargs.get("row_condition") is not None:
        condition = kwargs["row_condition"]
        if kwargs.get("condition_parser") != "pandas" or not isinstance(condition, str):
            raise Untranslatable(f"{exp_type}: only pandas row_condition strings are translated")
        domain, _ = condition_sql(condition, column_types)
    elif kwargs.get("condition_parser") is not None:
        raise Untranslatable(f"{exp_type}: condition_parser without row_condition")
    return _row_check(exp_type, kwargs, column_types, parameters, domain)


def _row_check(
    exp_type: str,
    kwargs: Mapping[str, Any],
    column_types: Mapping[str, str],
    parameters: Mapping[str, Any],
    domain: str,
) -> SqlCheck:
    if exp_type == "expect_compound_columns_to_be_unique":
        return _compound_unique(kwargs, column_types, domain)
    if exp_type == "expect_column_pair_values_a_to_be_greater_than_b":
        return _pair_greater(kwargs, column_types, domain)
    column = _column(kwargs.get("column"), column_types)
    col, sql_type = quote(column), column_types[column]
    missing = f"{col} IS NULL"
    values = (column,)
    if exp_type == "expect_column_values_to_not_be_null":
        return SqlCheck(
            ROWS,
            domain,
            "FALSE",
            f"{col} IS NULL",
            value_columns=values,
            columns=values,
            counts_missing=False,
        )
    if exp_type == "expect_column_values_to_be_null":
        return SqlCheck(
            ROWS,
            domain,
            "FALSE",
            f"{col} IS NOT NULL",
            value_columns=values,
            columns=values,
            counts_missing=False,
        )
    if exp_type == "expect_column_values_to_be_in_set":
        value_set = _resolve(kwargs.get("value_set"), parameters)
        if not isinstance(value_set, list | tuple | set):
            raise Untranslatable(f"{exp_type}: value_set must be a list")
        literals = sorted({_literal(v, sql_type, f"{exp_type}({column})") for v in value_set})
        unexpected = f"{col} NOT IN ({', '.join(literals)})" if literals else "TRUE"
        return SqlCheck(ROWS, domain, missing, unexpected, value_columns=values, columns=values)
    if exp_type == "expect_column_values_to_be_between":
        return _between(kwargs, column, sql_type, parameters, domain)
    if exp_type == "expect_column_values_to_match_regex":
        regex = _resolve(kwargs.get("regex"), parameters)
        if sql_type not in TEXT_TYPES or not isinstance(regex, str):
            raise Untranslatable(f"{exp_type}({column}): only text columns and string patterns")
        unexpected = f"NOT regexp_matches({col}, {_text_literal(regex_to_re2(regex))})"
        return SqlCheck(ROWS, domain, missing, unexpected, value_columns=values, columns=values)
    if exp_type == "expect_column_values_to_match_strftime_format":
        strftime_format = _resolve(kwargs.get("strftime_format"), parameters)
        if sql_type not in TEXT_TYPES or not isinstance(strftime_format, str):
            raise Untranslatable(f"{exp_type}({column}): only text columns and string formats")
        unexpected = f"NOT {strftime_sql(column, strftime_format)}"
        return SqlCheck(ROWS, domain, missing, unexpected, value_columns=values, columns=values)
    if exp_type == "expect_column_values_to_be_unique":
        return SqlCheck(ROWS, domain, missing, "", unique_key=values, value_columns=values, columns=values)
    raise Untranslatable(f"expectation type {exp_type} has no SQL translation")  # pragma: no cover


def _between(
    kwargs: Mapping[str, Any], column: str, sql_type: str, parameters: Mapping[str, Any], domain: str
) -> SqlCheck:
    what = f"expect_column_values_to_be_between({column})"
    low = _resolve(kwargs.get("min_value"), parameters)
    high = _resolve(kwargs.get("max_value"), parameters)
    strict_min = _resolve(kwargs.get("strict_min"), parameters)
    strict_max = _resolve(kwargs.get("strict_max"), parameters)
    if sql_type not in NUMBER_TYPES:
        raise Untranslatable(f"{what}: only numeric columns are translated")
    if low is None and high is None:
        raise Untranslatable(f"{what}: GX refuses a range without bounds")
    if low is not None and high is not None and low > high:
        raise Untranslatable(f"{what}: GX refuses min_value > max_value")
    for flag in (strict_min, strict_max):
        if flag not in (None, True, False):
            raise Untranslatable(f"{what}: strict_min/strict_max must be booleans")
    col = quote(column)
    outside = []
    if low is not None:
        outside.append(f"{col} {'<=' if strict_min else '<'} {_literal(low, sql_type, what)}")
    if high is not None:
        outside.append(f"{col} {'>=' if strict_max else '>'} {_literal(high, sql_type, what)}")
    return SqlCheck(
        ROWS,
        domain,
        f"{col} IS NULL",
        "(" + " OR ".join(outside) + ")",
        value_columns=(column,),
        columns=(column,),
    )


def _compound_unique(kwargs: Mapping[str, Any], column_types: Mapping[str, str], domain: str) -> SqlCheck:
    names = kwargs.get("column_list")
    if not isinstance(names, list) or not names:
        raise Untranslatable("expect_compound_columns_to_be_unique: column_list must be a list")
    columns = tuple(_column(c, column_types) for c in names)
    quoted = [quote(c) for c in columns]
    ignore = kwargs.get("ignore_row_if", "all_values_are_missing")
    if ignore == "all_values_are_missing":
        missing = "(" + " AND ".join(f"{c} IS NULL" for c in quoted) + ")"
    elif ignore == "any_value_is_missing":
        missing = "(" + " OR ".join(f"{c} IS NULL" for c in quoted) + ")"
    elif ignore == "never":
        missing = "FALSE"
    else:
        raise Untranslatable(f"expect_compound_columns_to_be_unique: ignore_row_if {ignore!r}")
    return SqlCheck(ROWS, domain, missing, "", unique_key=columns, value_columns=columns, columns=columns)


def _pair_greater(kwargs: Mapping[str, Any], column_types: Mapping[str, str], domain: str) -> SqlCheck:
    what = "expect_column_pair_values_a_to_be_greater_than_b"
    first = _column(kwargs.get("column_A"), column_types)
    second = _column(kwargs.get("column_B"), column_types)
    if kwargs.get("ignore_row_if") != "either_value_is_missing":
        # with a missing value left in, pandas and SQL disagree on what "a > b" is
        raise Untranslatable(f"{what}: only ignore_row_if 'either_value_is_missing' is translated")
    kinds = {column_types[first] in NUMBER_TYPES, column_types[second] in NUMBER_TYPES}
    if kinds != {True}:
        raise Untranslatable(f"{what}: only numeric columns are translated")
    or_equal = kwargs.get("or_equal")
    if or_equal not in (None, True, False):
        raise Untranslatable(f"{what}: or_equal must be a boolean")
    a, b = quote(first), quote(second)
    return SqlCheck(
        ROWS,
        domain,
        f"({a} IS NULL OR {b} IS NULL)",
        f"NOT ({a} {'>=' if or_equal else '>'} {b})",
        value_columns=(first, second),
        columns=(first, second),
    )
