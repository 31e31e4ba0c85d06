"""Site tables a probe broke: dates at the calendar's edges and in other ISO forms, rows whose cells
cannot be matched to the header, and what the reader noticed about the header, all in the site's table
report without a value, the night going on."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cohortpool.contract.tables import CLINICAL, INVALID, READS
from cohortpool.deid import Pseudonymiser
from cohortpool.features._dates import parse_iso, shift_date, shift_iso
from cohortpool.features.table_report import UNSHIFTABLE
from cohortpool.features.tables import WithdrawalError, pseudonymise_tables

KEYS = Pseudonymiser(b"k", "site01")
NIGHT = "2024-06-20"
CLINICAL_HEADER = list(CLINICAL.export_columns)
READS_HEADER = list(READS.export_columns)


class _ForwardKeys:
    """The keys, but shifting dates forward (9999-12-31 plus a day leaves the calendar)."""

    site_id = "site01"

    def patient_id(self, mrn: str) -> str:
        return KEYS.patient_id(mrn)

    def accession_id(self, accession: str) -> str:
        return KEYS.accession_id(accession)

    def shift_days(self, mrn: str) -> int:
        return 3


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _patient(mrn: str, **cells: str) -> list[str]:
    values = {
        "mrn": mrn, "patient_name": "Doe^Jane", "birth_date": "0001-01-01", "sex": "F", "address": "1 Road",
        "phone": "555", "height_cm": "160", "weight_kg": "61", "bmi": "23.83", "dxa_t_score": "-2.9",
        "diagnosis": "MET", "pathology_confirmed": "no", "primary_tumour": "lung",
        "first_exam_date": "2024-06-14",
    }  # fmt: skip
    values.update(cells)
    return [values[c] for c in CLINICAL_HEADER]


def _read(mrn: str) -> list[str]:
    values = {"mrn": mrn, "accession_number": "ACC1", "modality": "CT", "level": "L1", "reader": "Dr Who",
              "read_date": "2024-06-15", **dict.fromkeys(READS_HEADER[6:18], "no"), "genant_grade": "2",
              "height_loss_pct": "31.5"}  # fmt: skip
    return [values[c] for c in READS_HEADER]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _vault(vault: Path) -> list[dict[str, str]]:
    return _rows(vault / "tables" / f"{NIGHT}.csv")


@pytest.mark.parametrize(
    ("keys", "exam"), [(KEYS, "0001-01-05"), (KEYS, "0001-06-01"), (_ForwardKeys(), "9999-12-31")]
)
def test_a_first_exam_date_the_shift_moves_out_of_the_calendar_is_an_invalid_date(
    tmp_path: Path, keys, exam: str
) -> None:
    # was: OverflowError out of pseudonymise_tables, no table and no submission for the night
    _write(tmp_path / "clinical.csv", CLINICAL_HEADER, [_patient("M1"), _patient("M2", first_exam_date=exam)])
    _write(tmp_path / "reads.csv", READS_HEADER, [_read("M1")])
    out, vault = tmp_path / "out", tmp_path / "vault"
    result = pseudonymise_tables(tmp_path, out, keys, vault_dir=vault, night=NIGHT)
    assert result.error is None and result.counts == {"clinical_rows": 2, "reads_rows": 1}
    first, second = _rows(out / "clinical.csv")
    assert first["first_exam_date"] and first["age_years"] == "2023"
    assert second["first_exam_date"] == second["age_years"] == ""  # as for any invalid date
    lines = list(result.report.lines())
    assert any(
        line.startswith(f"clinical.csv first_exam_date, row 2 ({UNSHIFTABLE}): first_exam_date and age_years")
        for line in lines
    ), lines
    assert exam not in "\n".join(lines) and exam[:4] + "-" not in str(result.submission_facts())
    assert result.report.counts()["cells"]["clinical.csv"] == {"first_exam_date": {"not derived": 1}}
    (found,) = _vault(vault)
    assert (found["value_class"], found["original"]) == (UNSHIFTABLE, exam)  # the original: vault only


def test_date_arithmetic_never_overflows() -> None:
    assert shift_date(parse_iso("0001-01-01"), -1) is None  # type: ignore[arg-type]
    assert shift_date(parse_iso("9999-12-31"), 1) is None  # type: ignore[arg-type]
    assert shift_iso("0001-01-01", -365) is None and shift_iso("9999-12-31", 365) is None
    assert shift_iso("2024-03-01", -1) == "2024-02-29"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("2022-W37-4", "an ISO week date (year, week, weekday), not YYYY-MM-DD"),
        ("2022W374", "an ISO week date (year, week, weekday), not YYYY-MM-DD"),
        ("2022-258", "an ISO ordinal date (year, day of the year), not YYYY-MM-DD"),
        ("20220915", "8 digits without dashes (YYYYMMDD?), not YYYY-MM-DD"),
        ("2022-09-15T10:00", "a date with a time, not YYYY-MM-DD"),
        ("2022-09-15 10:00", "a date with a time, not YYYY-MM-DD"),
        ("２０２２-０９-１５", "digits other than 0-9 (fullwidth or another script), not YYYY-MM-DD"),
        ("0000-01-01", "YYYY-MM-DD but not a calendar date"),
    ],
)
def test_only_yyyy_mm_dd_is_a_date(tmp_path: Path, text: str, kind: str) -> None:
    assert parse_iso(text) is None
    _write(tmp_path / "clinical.csv", CLINICAL_HEADER, [_patient("M1", first_exam_date=text)])
    _write(tmp_path / "reads.csv", READS_HEADER, [])
    result = pseudonymise_tables(tmp_path, tmp_path / "out", KEYS)
    assert _rows(tmp_path / "out" / "clinical.csv")[0]["first_exam_date"] == ""
    (line,) = [x for x in result.report.lines() if x.startswith("clinical.csv first_exam_date")]
    assert f"row 1 ({kind})" in line and text not in line


def test_yyyy_mm_dd_with_blanks_around_is_a_date() -> None:
    assert parse_iso(" 2022-09-15 ") is not None and parse_iso("0001-01-01") is not None


def test_rows_whose_cells_cannot_be_matched_are_reported_and_release_no_value(tmp_path: Path) -> None:
    comma = _patient("M2", address="1 Road")
    comma[CLINICAL_HEADER.index("address")] = "1 Road, London"  # written unquoted below: one cell more
    text = ",".join(CLINICAL_HEADER) + "\n" + ",".join(_patient("M1")) + "\n" + ",".join(comma) + "\n"
    text += ",".join(_patient("M3")[:5]) + "\n"  # a row cut short (5 of 14 cells)
    text += ",".join(_patient("M4")) + ",,\n"  # trailing empty cells are no problem
    (tmp_path / "clinical.csv").write_text(text, encoding="utf-8")
    _write(tmp_path / "reads.csv", READS_HEADER, [_read("M1"), [*_read("M1"), "Dr Who"]])
    out, vault = tmp_path / "out", tmp_path / "vault"
    result = pseudonymise_tables(tmp_path, out, KEYS, vault_dir=vault, night=NIGHT)
    assert result.error is None
    rows = _rows(out / "clinical.csv")
    assert [r["source_row"] for r in rows] == ["1", "2", "3", "4"]  # every row accounted for
    for row in rows[1:3]:  # no value of a ragged row leaves: its cells may be in another column
        assert row["patient_id"] == KEYS.patient_id({"2": "M2", "3": "M3"}[row["source_row"]])
        assert {row[c] for c in ("sex", "height_cm", "bmi", "diagnosis", "pathology_confirmed")} == {INVALID}
        assert row["age_years"] == row["first_exam_date"] == row["primary_tumour"] == ""
    assert rows[3]["sex"] == "F" and rows[3]["first_exam_date"] != ""
    lines = list(result.report.lines())
    assert (
        "clinical.csv row 2 (15 cells where the header has 14): its cells cannot be matched to the columns: "
        "none of its values released (<invalid> in the kept columns), the hub quarantines the row; fix: give "
        "the row the header's 14 cells: quote a cell that holds a comma, or delete the cells past the last "
        "column"
    ) in lines
    assert any(line.startswith("clinical.csv row 3 (5 cells where the header has 14): ") for line in lines)
    assert any(line.startswith("reads.csv row 2 (21 cells where the header has 20): ") for line in lines)
    # the one-line-per-row findings replace the misleading cell ones ("write the first exam date ...")
    assert not any("first_exam_date" in line for line in lines)
    assert "London" not in "\n".join(lines) and "Dr Who" not in "\n".join(lines)
    assert result.report.counts()["rows"] == {
        "clinical.csv": {"too few cells": 1, "too many cells": 1},
        "reads.csv": {"too many cells": 1},
    }
    found = [r for r in _vault(vault) if r["column"] == ""]
    assert [(r["table"], r["source_row"], r["line"]) for r in found] == [
        ("clinical.csv", "2", "3"),
        ("clinical.csv", "3", "4"),
        ("reads.csv", "2", "3"),
    ]


def test_a_ragged_row_of_a_withdrawn_patient_never_leaves(tmp_path: Path) -> None:
    # the MRN moved out of its column (a stray cell before it): no row of a withdrawn patient may leave
    header = ["address", *[c for c in CLINICAL_HEADER if c != "address"]]
    row = ["1 Road", "London", "M2", *_patient("M2")[1:4], *_patient("M2")[5:]]
    _write(tmp_path / "clinical.csv", header, [row])
    _write(tmp_path / "reads.csv", READS_HEADER, [])
    _write(tmp_path / "withdrawn.csv", ["mrn"], [["M2"]])
    result = pseudonymise_tables(tmp_path, tmp_path / "out", KEYS)
    assert _rows(tmp_path / "out" / "clinical.csv") == []
    assert result.report.counts()["withdrawn_rows"] == {"clinical.csv": 1}


def test_a_withdrawal_row_with_more_cells_withholds_the_night(tmp_path: Path) -> None:
    _write(tmp_path / "clinical.csv", CLINICAL_HEADER, [_patient("M1")])
    _write(tmp_path / "reads.csv", READS_HEADER, [])
    (tmp_path / "withdrawn.csv").write_text("mrn\nM1,M2\n", encoding="utf-8")
    refused = r"withdrawn.csv: line 2 has 2 cells where the header has 1; "
    with pytest.raises(WithdrawalError, match=refused) as e:
        pseudonymise_tables(tmp_path, tmp_path / "out", KEYS)
    assert "M1" not in str(e.value) and "M2" not in str(e.value)


def test_what_the_reader_noticed_about_a_header_is_in_the_report(tmp_path: Path) -> None:
    header = ["MRN", *CLINICAL_HEADER[1:], "", ""]
    _write(tmp_path / "clinical.csv", header, [[*_patient("M1"), "", ""]])
    _write(tmp_path / "reads.csv", READS_HEADER, [_read("M1")])
    result = pseudonymise_tables(tmp_path, tmp_path / "out", KEYS)
    assert result.error is None and _rows(tmp_path / "out" / "clinical.csv")[0]["sex"] == "F"
    assert list(result.report.lines()) == [
        "clinical.csv: read 'MRN' as mrn (column names are lower case without blanks)",
        "clinical.csv: 2 columns have no name in the header (columns 15 and 16; trailing commas?); every "
        "cell of them is empty: ignored",
    ]
