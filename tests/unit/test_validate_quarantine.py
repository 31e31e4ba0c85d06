"""Quarantine decisions: duplicates, table-level errors, formula escaping."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from validate_support import CLEAN

from cohortpool.validate.findings import Finding
from cohortpool.validate.frames import read_table
from cohortpool.validate.quarantine import (
    QUARANTINE_COLUMNS,
    LinesFile,
    resolve_duplicates,
    split_table,
    write_lines,
)
from cohortpool.validate.suites import load_suite

LABEL = "column_values_to_be_unique(patient_id)"


def _frames(tmp_path: Path, rows: list[int]):
    frame = pd.read_csv(CLEAN / "clinical.csv", dtype=str, keep_default_na=False).iloc[rows]
    frame = frame.assign(source_row=[str(i) for i in range(1, len(frame) + 1)])
    frame.to_csv(tmp_path / "clinical.csv", index=False)
    return read_table(tmp_path, load_suite("clinical"))


def _dup(position: int) -> Finding:
    return Finding(
        "clinical",
        position,
        LABEL,
        "error",
        "one clinical row per patient",
        ("patient_id",),
        "keep_first_if_identical",
    )


def test_identical_copies_keep_the_first(tmp_path: Path) -> None:
    frames = _frames(tmp_path, [0, 1, 0, 0])
    kept = resolve_duplicates([_dup(0), _dup(2), _dup(3)], frames)
    assert sorted(f.position for f in kept) == [2, 3]
    assert all("duplicate of source row 1" in f.reason for f in kept)


def test_conflicting_copies_are_all_quarantined(tmp_path: Path) -> None:
    frames = _frames(tmp_path, [0, 1, 0])
    frames.text.loc[2, "bmi"] = "30.00"
    kept = resolve_duplicates([_dup(0), _dup(2)], frames)
    assert sorted(f.position for f in kept) == [0, 2]
    assert all("disagree" in f.reason for f in kept)


def test_many_conflicting_copies_name_the_first_few_in_each_line(tmp_path: Path) -> None:
    """Every copy listed in every copy's line grew as n^2: a hostile night of 10^5 disagreeing copies
    would write about 70 GB of quarantine.csv."""
    rows = [0] * 14
    frames = _frames(tmp_path, rows)
    for n in range(14):
        frames.text.loc[n, "bmi"] = f"{20 + n}.00"
    kept = resolve_duplicates([_dup(n) for n in range(14)], frames)
    assert sorted(f.position for f in kept) == list(range(14))
    listed = ", ".join(str(n) for n in range(1, 11))
    assert {f.reason for f in kept} == {
        f"one clinical row per patient: source rows {listed} and 4 more share the key but disagree; "
        "none is kept"
    }


def test_table_level_error_quarantines_every_row(tmp_path: Path) -> None:
    frames = _frames(tmp_path, [0, 1, 2])
    split = split_table(frames, load_suite("clinical"), [Finding("clinical", None, "x", "error", "broken")])
    assert (split.rows_in, len(split.accepted), split.quarantined) == (3, 0, 3)
    assert split.rejected == "x: broken"


def test_warning_rows_are_accepted_and_reported(tmp_path: Path) -> None:
    frames = _frames(tmp_path, [0, 1, 2])
    split = split_table(
        frames, load_suite("clinical"), [Finding("clinical", 1, "w", "warning", "odd", ("sex",))]
    )
    assert (len(split.accepted), split.quarantined, split.warned) == (3, 0, 1)
    assert split.warnings.iloc[0]["value"] == frames.text.loc[1, "sex"]


def test_formula_cells_are_escaped_but_negative_numbers_are_not(tmp_path: Path) -> None:
    lines = pd.DataFrame(
        [
            ["clinical", 1, "k", "e", "error", "r", "=HYPERLINK(1)"],
            ["clinical", 2, "k", "e", "error", "r", "-3.5"],
        ],
        columns=QUARANTINE_COLUMNS,
    )
    write_lines(lines, tmp_path / "q.csv")
    back = pd.read_csv(tmp_path / "q.csv", dtype=str)
    assert list(back["value"]) == ["'=HYPERLINK(1)", "-3.5"]


def test_lines_written_table_by_table_are_the_file_of_all_tables_at_once(tmp_path: Path) -> None:
    """quarantine.csv is appended to as each table is split; the file is the one the concatenated lines
    give (header once, missing source rows empty, quoting and formula escapes the same)."""
    first = pd.DataFrame(
        [["clinical", None, "", "table_rejected", "error", 'a "quoted", reason', ""]],
        columns=QUARANTINE_COLUMNS,
    ).astype({"source_row": "Int64"})
    second = pd.DataFrame(
        [
            ["reads", 3, "P1|A1", "e", "error", "r", "=SUM(A1)"],
            ["reads", 4, "P1|A2", "e", "error", "line\nbreak", "x, y"],
        ],
        columns=QUARANTINE_COLUMNS,
    ).astype({"source_row": "Int64"})
    lines = LinesFile(tmp_path / "parts.csv")
    for part in (first, pd.DataFrame(columns=QUARANTINE_COLUMNS), second):
        lines.append(part)
    write_lines(pd.concat([first, second], ignore_index=True), tmp_path / "whole.csv")
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    empty = LinesFile(tmp_path / "empty.csv")
    assert empty.path.read_text(encoding="utf-8") == ",".join(QUARANTINE_COLUMNS) + "\n"


def test_data_docs_count_lines_by_check_as_a_groupby_would(tmp_path: Path) -> None:
    """The Data Docs page counts quarantine lines reading the file line by line (a night may quarantine
    10^6 rows); the counts and the first 50 source rows are those of a pandas groupby of the file."""
    from cohortpool.validate.docs import _line_counts

    rows = [["reads", n, "k", "b_check", "error", "r", "v"] for n in range(1, 80)]
    rows += [
        ["clinical", None, "", "a_check", "error", "r", ""],
        ["clinical", 7, "k", "a_check", "error", "r", ""],
    ]
    rows += [["reads", 5, "k", "a_check", "error", "r", "v"]]
    write_lines(
        pd.DataFrame(rows, columns=QUARANTINE_COLUMNS).astype({"source_row": "Int64"}),
        tmp_path / "quarantine.csv",
    )
    write_lines(pd.DataFrame(columns=QUARANTINE_COLUMNS), tmp_path / "warnings.csv")
    expected = []
    lines = pd.read_csv(tmp_path / "quarantine.csv", dtype=str, keep_default_na=False)
    for (table, expectation, severity), group in lines.groupby(
        ["table", "expectation", "severity"], sort=True
    ):
        shown = [r for r in group["source_row"] if r]
        expected.append(
            {
                "table": table,
                "expectation": expectation,
                "severity": severity,
                "rows": len(group),
                "source_rows": ", ".join(shown[:50]) + (" ..." if len(shown) > 50 else ""),
            }
        )
    assert _line_counts(tmp_path) == expected
    assert [c["rows"] for c in expected] == [2, 1, 79] and expected[2]["source_rows"].endswith(" ...")
