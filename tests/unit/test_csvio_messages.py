"""The CSV reader's refusals and notes say where and what to do, never a cell that may be PHI (probe of
the site tables: headerless files, trailing commas, one-column files, names in other case, long cells,
ragged rows)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cohortpool.contract.csvio import (
    FIELD_LIMIT,
    TOO_FEW,
    TOO_MANY,
    CsvError,
    CsvTable,
    oversized_cell,
)
from cohortpool.contract.tables import CLINICAL, WITHDRAWN

HEADER = list(CLINICAL.export_columns)
MRN = "ZY04014967"


def _row(mrn: str = MRN, **cells: str) -> list[str]:
    values = dict.fromkeys(HEADER, "x") | {"mrn": mrn, "birth_date": "1950-06-15"} | cells
    return [values[c] for c in HEADER]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def _open(path: Path, table=CLINICAL) -> CsvTable:
    return CsvTable(path, table.required, table.export_columns)


def _refusal(path: Path, table=CLINICAL) -> str:
    with pytest.raises(CsvError) as caught, _open(path, table) as reader:
        list(reader)
    return str(caught.value)


def test_a_headerless_table_is_called_so_and_its_first_row_is_never_repeated(tmp_path: Path) -> None:
    # the first data row holds the MRN twice (mrn and a copy of it in phone): once read as a header,
    # the old message named the MRN as a column "named more than once"
    path = _write(tmp_path / "clinical.csv", [_row(phone=MRN), _row("QX1")])
    message = _refusal(path)
    assert "the first line is not a header: it names none of the contract's columns (mrn, " in message
    assert MRN not in message and "more than once" not in message


def test_a_repeated_column_is_named_only_as_a_contract_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "clinical.csv", [[*HEADER, "BMI "], [*_row(), "23.1"]])
    message = _refusal(path)
    assert "the header names column(s) bmi more than once: bmi (columns 9 and 15)" in message
    assert "keep one column of each name" in message
    # columns the contract does not name never leave: a repeat of one refuses nothing
    path = _write(tmp_path / "clinical.csv", [[*HEADER, "notes", "notes"], [*_row(), "a", "b"]])
    with _open(path) as reader:
        assert [row["bmi"] for row in reader] == ["x"]


def test_trailing_commas_give_unnamed_columns_ignored_while_empty(tmp_path: Path) -> None:
    path = _write(tmp_path / "clinical.csv", [[*HEADER, "", ""], [*_row(), "", ""], _row("QX1")])
    with _open(path) as reader:
        rows = list(reader)
    assert [r.shape for r in rows] == ["", ""]  # a row may leave the unnamed cells out
    assert reader.notes == [
        "2 columns have no name in the header (columns 15 and 16; trailing commas?); every cell of them is "
        "empty: ignored"
    ]
    path = _write(tmp_path / "clinical.csv", [[*HEADER, "", ""], [*_row(), "", ""], [*_row("QX1"), "", MRN]])
    message = _refusal(path)
    assert "clinical.csv: line 3: column 16 has no name in the header but holds a value" in message
    assert "name the column in the header or delete it" in message and MRN not in message
    assert "more than once" not in message


def test_a_one_column_file_gets_no_hint_about_commas(tmp_path: Path) -> None:
    for first in ([], [MRN]):
        path = _write(tmp_path / "withdrawn.csv", [first, [MRN]])
        message = _refusal(path, WITHDRAWN)
        assert "commas" not in message and MRN not in message
    assert "line 1 is empty; the first line must be the header naming the columns (mrn)" in _refusal(
        _write(tmp_path / "withdrawn.csv", [[], [MRN]]), WITHDRAWN
    )
    headerless = _write(tmp_path / "w.csv", [[MRN], ["QX1"]])
    assert "the first line is not a header" in _refusal(headerless, WITHDRAWN)
    # several columns expected, one cell: another separator
    path = tmp_path / "clinical.csv"
    path.write_text(";".join(HEADER) + "\n" + ";".join(_row()) + "\n", encoding="utf-8")
    assert "(the header has no commas: separate columns with ',')" in _refusal(path)


def test_column_names_are_matched_ignoring_case_and_blanks(tmp_path: Path) -> None:
    path = _write(tmp_path / "withdrawn.csv", [[" MRN"], [MRN]])
    with _open(path, WITHDRAWN) as reader:
        assert [row["mrn"] for row in reader] == [MRN]
    assert reader.notes == ["read 'MRN' as mrn (column names are lower case without blanks)"]
    header = [*HEADER[:-1], "First Exam Date"]
    message = _refusal(_write(tmp_path / "clinical.csv", [header, _row()]))
    assert "missing column(s) first_exam_date (found 'First Exam Date' in column 14: write it " in message
    assert "column names are lower case, words joined by '_'" in message


def test_a_long_cell_is_read_and_one_past_the_limit_is_refused_naming_its_column(tmp_path: Path) -> None:
    address = "1 Long Road " * 17_000  # about 200 KB: past the csv module's default 128 KiB
    path = _write(tmp_path / "clinical.csv", [HEADER, _row(), _row("QX1", address=address)])
    with _open(path) as reader:
        assert [len(row["address"] or "") for row in reader] == [1, len(address)]
    huge = "y" * (FIELD_LIMIT + 1)
    path = _write(tmp_path / "clinical.csv", [HEADER, _row(), _row("QX1", address=huge)])
    message = _refusal(path)
    assert "clinical.csv: line 3, column 5 (address) has a cell longer than 1 MiB" in message
    assert "shorten it or leave the column out of the export" in message


def test_the_long_cell_is_found_after_quotes_and_any_line_ends(tmp_path: Path) -> None:
    limit = 10
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b,c\r\n"x\r\ny","q""q",z\r1,"' + b"w" * 5 + b'",' + b"v" * 11 + b"\n")
    assert oversized_cell(path, 4, limit=limit) == 2  # line 4: the record after the quoted line break
    assert oversized_cell(path, 1, limit=limit) is None
    path.write_bytes(b"a,b\n" + b"u" * 11 + b",1\n")
    assert oversized_cell(path, 2, limit=limit, block_size=3) == 0


def test_ragged_rows_are_told_apart_from_trailing_empty_cells(tmp_path: Path) -> None:
    split = _row()[:4]  # a line break typed into an unquoted address: the row ends early
    path = _write(tmp_path / "clinical.csv", [HEADER, [*_row(), "", " "], [*_row(), "London"], split])
    with _open(path) as reader:
        rows = list(reader)
    assert [(r.line, r.shape, len(r.cells)) for r in rows] == [
        (2, "", 16),
        (3, TOO_MANY, 15),
        (4, TOO_FEW, 4),
    ]
    assert rows[2]["sex"] == "x" and rows[2]["bmi"] is None
