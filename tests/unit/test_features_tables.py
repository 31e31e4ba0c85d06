"""CSV pseudonymisation with the same keys as the images, column by column as the contract declares."""

from __future__ import annotations

import csv
import stat
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import pytest

from cohortpool.config import TablesConfig
from cohortpool.contract.csvio import formula_safe
from cohortpool.contract.tables import CLINICAL, INVALID, READS, WITHDRAWN
from cohortpool.deid import Pseudonymiser
from cohortpool.features.tables import WithdrawalError, pseudonymise_tables
from cohortpool.features.vocabulary import VocabularyError, load_vocabulary

KEYS = Pseudonymiser(b"k", "site01")
FINDINGS = ["yes", "no"] * 6
NIGHT = "2024-06-20"
CLINICAL_HEADER = list(CLINICAL.export_columns)
READS_HEADER = list(READS.export_columns)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _patient(mrn: str, **cells: str) -> list[str]:
    values = {
        "mrn": mrn, "patient_name": "Doe^Jane", "birth_date": "1950-06-15", "sex": "F", "address": "1 Road",
        "phone": "555", "height_cm": "160", "weight_kg": "61", "bmi": "23.83", "dxa_t_score": "-2.9",
        "diagnosis": "MET", "pathology_confirmed": "no", "primary_tumour": "lung",
        "first_exam_date": "2024-06-14",
    }  # fmt: skip
    values.update(cells)
    return [values[c] for c in CLINICAL_HEADER]


def _read(mrn: str, accession: str = "ACC1", level: str = "L1", **cells: str) -> list[str]:
    values = {"mrn": mrn, "accession_number": accession, "modality": "CT", "level": level, "reader": "Dr Who",
              "read_date": "2024-06-15", **dict(zip(READS_HEADER[6:18], FINDINGS, strict=True)),
              "genant_grade": "2", "height_loss_pct": "31.5"}  # fmt: skip
    values.update(cells)
    return [values[c] for c in READS_HEADER]


def _drop(tmp_path: Path) -> None:
    _write(
        tmp_path / "clinical.csv",
        CLINICAL_HEADER,
        [
            _patient("M1", diagnosis="OP", primary_tumour=""),
            _patient("M2", birth_date="03/04/1950", height_cm="", weight_kg="", bmi="", dxa_t_score="",
                     first_exam_date="bad"),
        ],
    )  # fmt: skip
    _write(tmp_path / "reads.csv", READS_HEADER, [_read("M1")])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_tables_get_the_image_pseudonyms_age_and_shifted_dates(tmp_path: Path) -> None:
    _drop(tmp_path)
    out = tmp_path / "out"
    assert pseudonymise_tables(tmp_path, out, KEYS).counts == {"clinical_rows": 2, "reads_rows": 1}
    clinical = _rows(out / "clinical.csv")
    assert tuple(clinical[0]) == CLINICAL.released
    first, second = clinical
    assert first["patient_id"] == KEYS.patient_id("M1") and first["age_years"] == "73"  # a day before 74
    shifted = date(2024, 6, 14) + timedelta(days=KEYS.shift_days("M1"))  # the images' shift of M1
    assert first["first_exam_date"] == shifted.isoformat() and first["source_row"] == "1"
    assert second["age_years"] == "" and second["first_exam_date"] == ""  # unparseable dates never pass
    reads = _rows(out / "reads.csv")
    assert tuple(reads[0]) == READS.released
    assert reads[0]["accession_id"] == KEYS.accession_id("ACC1") and reads[0]["genant_grade"] == "2"
    text = (out / "clinical.csv").read_text() + (out / "reads.csv").read_text()
    for phi in ("Doe", "1 Road", "555", "Dr Who", "M1", "ACC1", "1950"):
        assert phi not in text
    assert sorted(p.name for p in out.iterdir()) == ["clinical.csv", "reads.csv"]  # no partial file left


def test_missing_column_names_the_file_and_column_and_leaves_no_table(tmp_path: Path) -> None:
    _drop(tmp_path)
    out = tmp_path / "out"
    pseudonymise_tables(tmp_path, out, KEYS)
    (tmp_path / "reads.csv").write_text("mrn,modality\nM1,CT\n")
    result = pseudonymise_tables(tmp_path, out, KEYS)
    assert result.error is not None and "reads.csv: missing column(s) accession_number" in result.error
    assert not (out / "reads.csv").exists()  # the earlier run's table is not left to be sent


def test_a_repeated_header_refuses_the_table_naming_the_column(tmp_path: Path) -> None:
    _drop(tmp_path)
    out = tmp_path / "out"
    pseudonymise_tables(tmp_path, out, KEYS)
    header, *body = (tmp_path / "clinical.csv").read_text().splitlines()
    (tmp_path / "clinical.csv").write_text("\n".join([header + ",bmi", *(r + ",99" for r in body)]) + "\n")
    result = pseudonymise_tables(tmp_path, out, KEYS)
    assert (
        result.error is not None and "clinical.csv" in result.error and "bmi more than once" in result.error
    )
    assert not (out / "clinical.csv").exists() and not list(out.glob(".*"))


def test_a_table_that_breaks_part_way_leaves_no_half_table(tmp_path: Path) -> None:
    _drop(tmp_path)
    good = (tmp_path / "clinical.csv").read_bytes()
    (tmp_path / "clinical.csv").write_bytes(good + b"M9,\xff\xfe broken\n")
    out = tmp_path / "out"
    result = pseudonymise_tables(tmp_path, out, KEYS)
    assert result.error is not None and "line 4 is not UTF-8" in result.error
    assert not (out / "clinical.csv").exists() and not list(out.glob(".*"))


#: identifiers a careless site types into every column the contract keeps (tokens grepped for)
TYPED = {
    "sex": "QZ00001K Jane",
    "height_cm": "tel 0207946",
    "weight_kg": "0207946QZ00002K",
    "bmi": "1234567",  # a numeric-looking MRN: longer than any measurement
    "dxa_t_score": "-2.9 QZ00003K",
    "diagnosis": "MET QZ00004K",
    "pathology_confirmed": "yes, per Dr QZ00005K",
}
TYPED_READS = {"modality": "CT QZ00006K", "level": "QZ00007K", "fracture_line": "QZ00008K",
               "genant_grade": "2 (QZ00009K)", "height_loss_pct": "QZ00010K"}  # fmt: skip


def test_kept_values_outside_their_value_set_leave_as_invalid_and_stay_in_the_vault(tmp_path: Path) -> None:
    _write(
        tmp_path / "clinical.csv",
        CLINICAL_HEADER,
        [_patient("M1", **TYPED), _patient("M2", sex=" M ", bmi="23.")],
    )
    _write(tmp_path / "reads.csv", READS_HEADER, [_read("M1", **TYPED_READS), _read("M2")])
    out, vault = tmp_path / "out", tmp_path / "vault"
    result = pseudonymise_tables(tmp_path, out, KEYS, vault_dir=vault, night=NIGHT)
    first, second = _rows(out / "clinical.csv")
    assert {c: first[c] for c in TYPED} == dict.fromkeys(TYPED, INVALID)
    assert second["sex"] == "M" and second["bmi"] == "23."  # trimmed codes and short numbers pass
    read = _rows(out / "reads.csv")[0]
    assert {c: read[c] for c in TYPED_READS} == dict.fromkeys(TYPED_READS, INVALID)
    released = (out / "clinical.csv").read_text() + (out / "reads.csv").read_text()
    assert "QZ" not in released and "0207946" not in released and "1234567" not in released
    # the vault keeps every original with the site's row, line and column, owner-only
    kept = _rows(vault / "tables" / f"{NIGHT}.csv")
    originals = {(r["table"], r["column"]): r for r in kept}
    for column, value in TYPED.items():
        row = originals[("clinical.csv", column)]
        expected = (formula_safe(value), "1", "2", INVALID)  # the vault's CSV is formula-safe too
        assert (row["original"], row["source_row"], row["line"], row["released"]) == expected
    assert originals[("reads.csv", "level")]["original"] == "QZ00007K"
    assert stat.S_IMODE((vault / "tables" / f"{NIGHT}.csv").stat().st_mode) == 0o600
    assert stat.S_IMODE((vault / "tables").stat().st_mode) == 0o700
    # what is printed and what goes into submission.json names places and value classes, never values
    lines = "\n".join(result.report.lines())
    assert "clinical.csv sex, row 1 (13 characters: letters, digits, spaces)" in lines
    assert "fix: write sex as one of M, F" in lines
    assert "reads.csv genant_grade" in lines and "QZ" not in lines and "0207946" not in lines
    assert result.submission_facts()["site_findings"]["cells"]["clinical.csv"]["bmi"] == {"invalid": 1}
    assert "QZ" not in repr(result.submission_facts())


def test_primary_tumour_leaves_only_as_a_vocabulary_term(tmp_path: Path) -> None:
    typed = ["lung", " Lung Cancer ", "RENAL_cell-carcinoma", "lung; pt QZ00011K Jane Doe tel 02079460958",
             "", "myeloma", "肺癌"]  # fmt: skip
    _write(tmp_path / "clinical.csv", CLINICAL_HEADER,
           [_patient(f"M{i}", primary_tumour=t) for i, t in enumerate(typed)])  # fmt: skip
    _write(tmp_path / "reads.csv", READS_HEADER, [])
    out, vault = tmp_path / "out", tmp_path / "vault"
    pseudonymise_tables(tmp_path, out, KEYS, vault_dir=vault, night=NIGHT)
    released = [r["primary_tumour"] for r in _rows(out / "clinical.csv")]
    assert released == ["lung", "lung", "kidney", "other", "", "other", "lung"]
    # a consortium that studies myeloma lists it (a term of its own vocabulary maps by itself too)
    wider = TablesConfig(primary_tumour_vocabulary=("lung", "kidney", "myeloma", "other primary"),
                         primary_tumour_other="other primary")  # fmt: skip
    pseudonymise_tables(tmp_path, out, KEYS, options=wider)
    released = [r["primary_tumour"] for r in _rows(out / "clinical.csv")]
    assert released == ["lung", "lung", "kidney", "other primary", "", "myeloma", "lung"]
    outcomes = {
        r["source_row"]: (r["outcome"], r["original"]) for r in _rows(vault / "tables" / f"{NIGHT}.csv")
    }
    assert outcomes["4"] == ("not in the vocabulary: released as other", typed[3])
    assert outcomes["2"] == ("released as lung", typed[1])  # mapped values are recorded too


def test_a_consortium_synonyms_file_is_read_and_checked(tmp_path: Path) -> None:
    mine = tmp_path / "synonyms.csv"
    mine.write_text("# reviewed by the consortium\nsynonym,term\nca bronchus,lung\n", encoding="utf-8")
    vocabulary = load_vocabulary(TablesConfig(primary_tumour_synonyms=mine))
    assert vocabulary.release("CA  Bronchus") == ("lung", "synonym")
    assert vocabulary.release("lung cancer") == ("other", "other")  # the shipped list is replaced
    mine.write_text("synonym,term\nca bronchus,lung\nCA bronchus,breast\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"synonyms.csv: line 3: .* already means 'lung' \(line 2\)"):
        load_vocabulary(TablesConfig(primary_tumour_synonyms=mine))
    with pytest.raises(ValueError, match="primary_tumour_other"):
        TablesConfig(primary_tumour_other="unknown")


def test_date_problems_are_reported_in_the_sites_own_terms(tmp_path: Path) -> None:
    _write(
        tmp_path / "clinical.csv",
        CLINICAL_HEADER,
        [_patient("M1"), _patient("M2", birth_date="2025-01-02"), _patient("M3", birth_date="15/06/1950"),
         _patient("M4", first_exam_date="45000"), _patient("", birth_date="1950-02-30")],
    )  # fmt: skip
    _write(tmp_path / "reads.csv", READS_HEADER, [_read("M1", accession="")])
    out, vault = tmp_path / "out", tmp_path / "vault"
    result = pseudonymise_tables(tmp_path, out, KEYS, vault_dir=vault, night=NIGHT)
    lines = list(result.report.lines())
    assert lines[0] == (
        "clinical.csv birth_date, row 2 (a date after first_exam_date): age_years cannot be derived and is "
        "left empty, the hub quarantines the row; fix: correct birth_date or first_exam_date (the birth date "
        "is after the first exam)"
    )
    assert lines[1] == (
        "clinical.csv birth_date, rows 3, 5 (a date written day/month/year or month/day/year, not "
        "YYYY-MM-DD; YYYY-MM-DD but not a calendar date): age_years left empty, the hub quarantines the "
        "row; fix: write the birth date as YYYY-MM-DD"
    )
    assert any(
        line.startswith(
            "clinical.csv first_exam_date, row 4 (a number, not a date (a spreadsheet's date serial"
        )
        and "fix: write the first exam date as YYYY-MM-DD" in line
        for line in lines
    )
    assert any(line.startswith("clinical.csv mrn, row 5 (empty): patient_id left empty") for line in lines)
    assert any(line.startswith("reads.csv accession_number, row 1") for line in lines)
    assert lines[-1] == f"originals and every row: {vault / 'tables' / f'{NIGHT}.csv'}"
    vault_rows = _rows(vault / "tables" / f"{NIGHT}.csv")
    after = next(r for r in vault_rows if r["source_row"] == "2" and r["column"] == "birth_date")
    assert after["value_class"] == "a date after first_exam_date" and after["original"] == "2025-01-02"
    assert (
        after["what_to_fix"]
        == "correct birth_date or first_exam_date (the birth date is after the first exam)"
    )
    ages = [r["age_years"] for r in _rows(out / "clinical.csv")]
    assert ages == ["73", "", "", "", ""]  # the night went on: every row released


def test_generalisations_coarsen_age_date_and_rare_terms(tmp_path: Path) -> None:
    _write(
        tmp_path / "clinical.csv",
        CLINICAL_HEADER,
        [_patient("M1", birth_date="1950-06-15"), _patient("M2", birth_date="1930-01-01"),
         _patient("M3", primary_tumour="thyroid"), _patient("M4", primary_tumour="Lung cancer")],
    )  # fmt: skip
    _write(tmp_path / "reads.csv", READS_HEADER, [])
    options = TablesConfig(age_band_years=5, age_top_code=90, first_exam_date_precision="month",
                           merge_rare_categories_below=2)  # fmt: skip
    result = pseudonymise_tables(tmp_path, tmp_path / "out", KEYS, options=options)
    rows = _rows(tmp_path / "out" / "clinical.csv")
    assert [r["age_years"] for r in rows] == ["70", "90", "70", "70"]  # 73 -> band 70-74; 94 -> 90
    assert all(r["first_exam_date"].endswith("-01") for r in rows)
    shifted = date(2024, 6, 14) + timedelta(days=KEYS.shift_days("M1"))
    assert rows[0]["first_exam_date"] == shifted.replace(day=1).isoformat()
    assert [r["primary_tumour"] for r in rows] == ["lung", "lung", "other", "lung"]  # 1 thyroid: merged
    assert result.report.counts()["merged_rare"] == {"primary_tumour": 1}
    yearly = TablesConfig(first_exam_date_precision="year")
    pseudonymise_tables(tmp_path, tmp_path / "out", KEYS, options=yearly)
    assert all(r["first_exam_date"].endswith("-01-01") for r in _rows(tmp_path / "out" / "clinical.csv"))


def test_withdrawn_patients_leave_only_as_pseudonyms(tmp_path: Path) -> None:
    _write(tmp_path / "clinical.csv", CLINICAL_HEADER, [_patient("M1"), _patient("M2"), _patient("M3")])
    _write(tmp_path / "reads.csv", READS_HEADER, [_read("M1"), _read("M2"), _read("M2", level="L2")])
    _write(tmp_path / "withdrawn.csv", ["mrn"], [[" M2 "], ["M2"], [""], ["M9"]])
    out, vault = tmp_path / "out", tmp_path / "vault"
    result = pseudonymise_tables(tmp_path, out, KEYS, vault_dir=vault, night=NIGHT)
    assert result.withdrawn == {KEYS.patient_id("M2"), KEYS.patient_id("M9")}
    withdrawn = _rows(out / "withdrawn.csv")
    assert tuple(withdrawn[0]) == WITHDRAWN.released
    assert [r["patient_id"] for r in withdrawn] == [KEYS.patient_id("M2"), KEYS.patient_id("M9")]
    assert {r["site_id"] for r in withdrawn} == {"site01"}
    clinical, reads = _rows(out / "clinical.csv"), _rows(out / "reads.csv")
    assert [r["source_row"] for r in clinical] == ["1", "3"]  # the site's row numbers stay
    assert [r["patient_id"] for r in reads] == [KEYS.patient_id("M1")]
    assert result.counts == {"withdrawn_patients": 2, "clinical_rows": 2, "reads_rows": 1}
    assert result.report.counts()["withdrawn_rows"] == {"clinical.csv": 1, "reads.csv": 2}
    assert any(
        line.startswith("withdrawn.csv mrn, row 3 (empty): row ignored") for line in result.report.lines()
    )
    assert "M2" not in (out / "withdrawn.csv").read_text()


def test_an_unreadable_withdrawal_list_stops_the_tables(tmp_path: Path) -> None:
    _drop(tmp_path)
    (tmp_path / "withdrawn.csv").write_text("mrn,mrn\nM1,M1\n")
    with pytest.raises(
        WithdrawalError, match=r"withdrawn.csv: the header names column\(s\) mrn more than once"
    ):
        pseudonymise_tables(tmp_path, tmp_path / "out", KEYS)
    assert not (tmp_path / "out" / "clinical.csv").exists()


def test_reads_stream_through_with_memory_for_a_few_rows(tmp_path: Path) -> None:
    _write(tmp_path / "clinical.csv", CLINICAL_HEADER, [_patient("M1")])
    rows = [_read(f"M{i // 20}", accession=f"ACC{i // 20}", level="L1") for i in range(20_000)]
    _write(tmp_path / "reads.csv", READS_HEADER, rows)
    tracemalloc.start()
    try:
        result = pseudonymise_tables(tmp_path, tmp_path / "out", KEYS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.counts["reads_rows"] == 20_000
    # collecting the rows first (the old list) took about 30 MB here; streaming needs a few rows' worth
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB"
