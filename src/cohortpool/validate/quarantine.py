"""Split a table into accepted rows and quarantined rows, each quarantined row with its reasons.

Rows in = accepted + quarantined, always: a row with any ``error`` finding is quarantined (one line in
``quarantine.csv`` per failed check), every other row is accepted, and a table-level error (a missing
column type, an expectation that could not run) quarantines every row of the table.

Duplicates: GX's uniqueness expectations flag every copy of a repeated key. Where the suite marks the
expectation ``duplicates: keep_first_if_identical``, copies that agree on every contract column (except
``source_row``) keep the first and quarantine the later ones as duplicates of it; copies that disagree are
all quarantined, since nothing says which one is right.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cohortpool.contract.csvio import FORMULA_START, formula_safe
from cohortpool.validate.findings import ERROR, WARNING, Finding, Found
from cohortpool.validate.frames import TableFrames
from cohortpool.validate.suites import TableSuite

QUARANTINE_COLUMNS = ["table", "source_row", "key", "expectation", "severity", "reason", "value"]
KEEP_FIRST_IF_IDENTICAL = "keep_first_if_identical"
TABLE_REJECTED = "table_rejected"
#: copies of a key named in each of their lines: every copy listed in every line made a night of n
#: disagreeing copies write n^2 row numbers (10^5 copies: about 70 GB of quarantine.csv)
LISTED_COPIES = 10


@dataclass
class TableSplit:
    """A validated table: accepted rows (typed, contract columns) and the report lines."""

    accepted: pd.DataFrame
    quarantine: pd.DataFrame
    warnings: pd.DataFrame
    rows_in: int
    quarantined: int
    warned: int
    rejected: str | None


def _pos(finding: Finding) -> int:
    if finding.position is None:
        raise ValueError("a table-level finding has no row")
    return finding.position


def duplicate_reason(reason: str, first_row: int) -> str:
    """The reason of a later identical copy of a key's first row."""
    return f"{reason}: duplicate of source row {first_row} (identical values; the first copy is kept)"


def conflict_reason(reason: str, listed: str, copies: int) -> str:
    """The reason of each of ``copies`` rows that share a key but disagree; ``listed``: the source rows
    of the first :data:`LISTED_COPIES`, comma-separated."""
    if copies > LISTED_COPIES:
        listed += f" and {copies - LISTED_COPIES:,} more"
    return f"{reason}: source rows {listed} share the key but disagree; none is kept"


def resolve_duplicates(findings: list[Finding], frames: TableFrames) -> list[Finding]:
    """Apply the keep-first-if-identical policy (module docstring) to uniqueness findings."""
    out = [f for f in findings if f.duplicates != KEEP_FIRST_IF_IDENTICAL or f.position is None]
    flagged: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        if finding.duplicates == KEEP_FIRST_IF_IDENTICAL and finding.position is not None:
            flagged[finding.expectation].append(finding)
    compared = [c for c in frames.text.columns if c != "source_row"]
    source_rows = frames.source_rows()
    for group_findings in flagged.values():
        columns = list(group_findings[0].columns)
        by_key: dict[tuple[object, ...], list[Finding]] = defaultdict(list)
        for finding in group_findings:
            by_key[tuple(frames.text.loc[_pos(finding)][columns])].append(finding)
        for copies in by_key.values():
            copies.sort(key=_pos)
            rows = frames.text.loc[[_pos(f) for f in copies]][compared]
            first_row = int(source_rows.loc[_pos(copies[0])])
            if len(rows.drop_duplicates()) == 1:
                out.extend(
                    Finding(
                        f.table,
                        f.position,
                        f.expectation,
                        f.severity,
                        duplicate_reason(f.reason, first_row),
                        f.columns,
                    )
                    for f in copies[1:]
                )
            else:
                listed = ", ".join(str(int(source_rows.loc[_pos(f)])) for f in copies[:LISTED_COPIES])
                out.extend(
                    Finding(
                        f.table,
                        f.position,
                        f.expectation,
                        f.severity,
                        conflict_reason(f.reason, listed, len(copies)),
                        f.columns,
                    )
                    for f in copies
                )
    return out


def _key_text(text: pd.DataFrame, suite: TableSuite) -> pd.Series:
    key_cols = [c for c in suite.key if c in text.columns]
    parts = [text[c].fillna("").astype(str) for c in key_cols]
    if not parts:
        return pd.Series("", index=text.index)
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + "|" + part
    return joined


def _value_text(rows: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """The reported value of each row: the cell, or ``col=value; ...`` for several columns."""
    present = [c for c in columns if c in rows.columns]
    if not present:
        return pd.Series("", index=rows.index)
    values = {c: rows[c].astype(object).where(rows[c].notna(), "").astype(str) for c in present}
    if len(present) == 1:
        return values[present[0]]
    joined = pd.Series("", index=rows.index)
    for n, c in enumerate(present):
        joined = joined + ("; " if n else "") + f"{c}=" + values[c]
    return joined


#: the order of report lines: by row, then check; findings of one row and check keep their order
LINE_ORDER = ("source_row", "expectation")


def _lines(findings: list[Finding], frames: TableFrames, suite: TableSuite) -> pd.DataFrame:
    """Report lines of the findings, in :data:`LINE_ORDER` (stable)."""
    lines = line_frame(findings, frames, suite)
    return lines.sort_values(list(LINE_ORDER), kind="stable", na_position="first")


def reported_rows(claimed: pd.Series, positions: np.ndarray) -> np.ndarray:
    """The row number a report line gives each row: its ``source_row`` where that is a row number
    (1 or more), else its 1-based position in the file (``positions``: 0-based)."""
    filled = claimed.fillna(0).to_numpy(dtype=np.int64)
    return np.where(claimed.notna().to_numpy() & (filled >= 1), filled, positions + 1)


def line_frame(findings: list[Finding], frames: TableFrames, suite: TableSuite) -> pd.DataFrame:
    """Report lines of the findings, one per finding in their order; only the rows they name are read
    (a 10^6-row table has few).

    Built column by column (numpy arrays indexed by each finding's row) rather than as a tuple and a
    dictionary entry per finding: a night that quarantines 10^6 rows builds 10^6 lines (issue 16 item 2).
    """
    if not findings:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    count = len(findings)
    positions = np.fromiter(
        (-1 if f.position is None else f.position for f in findings), dtype=np.int64, count=count
    )
    on_row = np.flatnonzero(positions >= 0)
    named = np.unique(positions[on_row])
    rows = _rows_at(frames.text, named)
    at = np.searchsorted(named, positions[on_row])  # each finding's row among the named rows
    keys = _key_text(rows, suite).to_numpy(dtype=object)
    source = reported_rows(_rows_at(frames.typed[["source_row"]], named)["source_row"], named)
    source_rows = np.zeros(count, dtype=np.int64)
    source_rows[on_row] = source[at]
    key_column = np.full(count, "", dtype=object)
    key_column[on_row] = keys[at]
    value_column = np.array([f.value for f in findings], dtype=object)
    by_columns: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for n in on_row.tolist():
        by_columns[findings[n].columns].append(n)
    for columns, members in by_columns.items():
        which = np.array(members, dtype=np.int64)
        wanted = np.unique(positions[which])
        texts = _value_text(_rows_at(rows, wanted), columns).to_numpy(dtype=object)
        value_column[which] = texts[np.searchsorted(wanted, positions[which])]
    no_row = np.ones(count, dtype=bool)
    no_row[on_row] = False
    return pd.DataFrame(
        {
            "table": [f.table for f in findings],
            "source_row": pd.arrays.IntegerArray(source_rows, no_row),
            "key": key_column,
            "expectation": [f.expectation for f in findings],
            "severity": [f.severity for f in findings],
            "reason": [f.reason for f in findings],
            "value": value_column,
        },
        columns=QUARANTINE_COLUMNS,
    )


def _rows_at(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """The rows of ``frame`` at these positions (its index), in their order; ``frame`` itself when it
    holds exactly those rows (a table read in chunks gathers only the named rows)."""
    if len(frame) == len(positions) and frame.index.equals(pd.Index(positions)):
        return frame
    return frame.loc[positions]


@dataclass
class TableVerdict:
    """What a table's findings decide: its report lines and the positions of its quarantined rows."""

    quarantine: pd.DataFrame
    warnings: pd.DataFrame
    bad: list[int]
    warned: int
    rejected: str | None

    def split(self, accepted: pd.DataFrame, rows_in: int) -> TableSplit:
        """The table's split, with these accepted rows (empty where they were written to a file)."""
        return TableSplit(
            accepted=accepted,
            quarantine=self.quarantine,
            warnings=self.warnings,
            rows_in=rows_in,
            quarantined=len(self.bad),
            warned=self.warned,
            rejected=self.rejected,
        )


def judge(frames: TableFrames, suite: TableSuite, findings: list[Finding]) -> TableVerdict:
    """The report lines and quarantined rows of one table (module docstring).

    ``frames`` needs only the rows the findings name (a table read in chunks passes just those, indexed
    by their positions), except for a table-level error, which names every row.
    """
    findings = resolve_duplicates(findings, frames)
    rejected = rejection(findings)
    if rejected:
        finding_rows = [
            Finding(suite.table, int(pos), TABLE_REJECTED, ERROR, rejected) for pos in frames.text.index
        ]
        return TableVerdict(
            quarantine=_lines(finding_rows, frames, suite),
            warnings=pd.DataFrame(columns=QUARANTINE_COLUMNS),
            bad=[int(p) for p in frames.text.index],
            warned=0,
            rejected=rejected,
        )
    errors = [f for f in findings if f.severity == ERROR]
    warnings = [f for f in findings if f.severity == WARNING]
    bad = sorted({f.position for f in errors if f.position is not None})
    warned_rows = {f.position for f in warnings if f.position is not None} - set(bad)
    return TableVerdict(
        quarantine=_lines(errors, frames, suite),
        warnings=_lines(warnings, frames, suite),
        bad=bad,
        warned=len(warned_rows),
        rejected=None,
    )


def rejection(found: Iterable[Found]) -> str:
    """Why a table-level error rejects the whole table (every row is then quarantined), or ``""``."""
    return "; ".join(
        f"{f.expectation}: {f.reason}"
        for f in found
        if isinstance(f, Finding) and f.position is None and f.severity == ERROR
    )


def split_table(frames: TableFrames, suite: TableSuite, findings: list[Finding]) -> TableSplit:
    """Accepted rows and report lines of one table (module docstring)."""
    verdict = judge(frames, suite, findings)
    accepted = frames.typed.drop(index=verdict.bad)[suite.columns].reset_index(drop=True)
    return verdict.split(accepted, frames.rows_in)


def unreadable_rows(table: str, rows_in: int, problem: str) -> pd.DataFrame:
    """Quarantine lines for a table that could not even be parsed: one per data row, by position."""
    return pd.DataFrame(
        {
            "table": table,
            "source_row": pd.array(range(1, rows_in + 1), dtype="Int64"),
            "key": "",
            "expectation": TABLE_REJECTED,
            "severity": ERROR,
            "reason": problem,
            "value": "",
        },
        columns=QUARANTINE_COLUMNS,
    )


class LinesFile:
    """``quarantine.csv`` or ``warnings.csv``, written part by part: a table's lines as soon as it is
    split, so that a night that quarantines every row does not hold every table's lines at once.
    The file is the one :func:`write_lines` writes for the parts concatenated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        pd.DataFrame(columns=QUARANTINE_COLUMNS).to_csv(path, index=False, lineterminator="\n")

    def append(self, lines: pd.DataFrame) -> None:
        if not len(lines):
            return
        safe = lines[QUARANTINE_COLUMNS].copy()
        for col in ("key", "expectation", "reason", "value"):
            # only the cells a spreadsheet could run go through formula_safe: a night that quarantines
            # every row writes 10^6 lines, and a call per cell was 2 s of 30
            risky = _may_be_formulas(safe[col])
            if risky.any():
                safe.loc[risky, col] = safe.loc[risky, col].map(formula_safe)
        safe.to_csv(self.path, mode="a", header=False, index=False, lineterminator="\n")


def _may_be_formulas(column: pd.Series) -> np.ndarray:
    """Which cells are text starting like a formula (a column of numbers or nothing has none)."""
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return np.zeros(len(column), dtype=bool)
    return column.str.startswith(FORMULA_START, na=False).to_numpy(dtype=bool)


def write_lines(lines: pd.DataFrame, path: Path) -> None:
    """Write quarantine/warning lines as UTF-8 CSV, formula-escaped, deterministic row order."""
    LinesFile(path).append(lines)
