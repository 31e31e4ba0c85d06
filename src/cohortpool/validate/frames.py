"""Read one submission table into the two frames the suites run on.

Every cell is first read as text, exactly as submitted, so that a malformed number or date is never lost
or silently turned into a null: the ``text`` frame is what format expectations (``applies_to: "text"``) and
``quarantine.csv`` see. The ``typed`` frame casts each contract column to its suite type; a cell that does
not parse becomes null there, and the text-frame format expectation quarantines its row.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cohortpool.validate.suites import TableSuite


class TableRejected(Exception):
    """A whole table cannot be validated (missing file or column, unreadable); the others still are."""

    def __init__(self, table: str, file: str, problem: str, rows_in: int, sha256: str | None) -> None:
        super().__init__(f"{file}: {problem}")
        self.table = table
        self.file = file
        self.problem = problem
        self.rows_in = rows_in
        self.sha256 = sha256


@dataclass
class TableFrames:
    """One submission table, as text and typed, with its provenance."""

    table: str
    file: str
    sha256: str
    text: pd.DataFrame
    typed: pd.DataFrame
    extra_columns: list[str] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        return len(self.text)

    def source_rows(self) -> pd.Series:
        """The row's ``source_row`` where it is a valid row number, else its 1-based position in the file."""
        positional = pd.Series(range(1, len(self.typed) + 1), index=self.typed.index, dtype="Int64")
        claimed = self.typed["source_row"]
        return claimed.where(claimed >= 1, positional).fillna(positional).astype("Int64")


#: delimiters spreadsheet exports use instead of commas
_SEPARATORS = ((";", "semicolon"), ("\t", "tab"), ("|", "pipe"))


def _count_data_rows(data: bytes) -> int:
    """Data rows of a file that could not be parsed: its non-empty lines minus the header."""
    lines = [line for line in data.splitlines() if line.strip()]
    return max(len(lines) - 1, 0)


def _cast(text: pd.Series, gx_type: str) -> pd.Series:
    if gx_type == "str":
        return text
    if gx_type == "datetime64[us]":
        return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[us]")
    number = pd.to_numeric(text, errors="coerce")
    if gx_type == "Int64":
        # a non-whole number (e.g. "2.5") is not an integer: null here, quarantined by the text format check
        whole = number.where(number.isna() | (number == number.round()))
        return whole.astype("Int64")
    return number.astype("float64")


def read_table(submission_dir: Path, suite: TableSuite) -> TableFrames:
    """Read ``<submission_dir>/<table>.csv``; raise :class:`TableRejected` naming the file and the problem."""
    name = f"{suite.table}.csv"
    path = submission_dir / name
    if not path.is_file():
        raise TableRejected(suite.table, name, "file is missing from the submission", 0, None)
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    rows = _count_data_rows(data)
    try:
        # the contract says UTF-8 without BOM; a BOM is tolerated (it carries no data) rather than
        # turning the first column name into a "missing column"
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TableRejected(
            suite.table,
            name,
            f"not UTF-8 (byte {exc.start}, line {line}); re-export the table as UTF-8",
            rows,
            sha256,
        ) from exc
    try:
        frame = pd.read_csv(
            io.StringIO(content), dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TableRejected(
            suite.table, name, f"not a comma-separated table: {exc}".strip(), rows, sha256
        ) from exc
    missing = [col for col in suite.columns if col not in frame.columns]
    if missing:
        header = str(frame.columns[0]) if len(frame.columns) == 1 else ""
        hint = next(
            (
                f"; it looks {label}-separated, export it comma-separated"
                for sep, label in _SEPARATORS
                if sep in header
            ),
            "",
        )
        raise TableRejected(
            suite.table,
            name,
            f"missing column(s) {', '.join(missing)}; the data contract (section 2) lists "
            f"{', '.join(suite.columns)}{hint}",
            len(frame),
            sha256,
        )
    extra = [str(col) for col in frame.columns if col not in suite.column_types]
    text = frame[suite.columns].astype("str")
    text = text.mask(text == "", None).reset_index(drop=True)
    typed = pd.DataFrame(
        {col: _cast(text[col], gx_type) for col, gx_type in suite.column_types.items()}, index=text.index
    )
    # columns outside the contract are shown to the suite (expect_table_columns_to_match_set reports them)
    # but never loaded: they may hold anything a site exported by mistake
    for col in extra:
        typed[col] = frame[col].astype("str").reset_index(drop=True)
    return TableFrames(suite.table, name, sha256, text, typed, extra)
