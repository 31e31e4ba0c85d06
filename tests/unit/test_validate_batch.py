"""validate_submission end to end on small submissions: outputs, counts, rejections, determinism, privacy."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from validate_support import copy_clean, lines, read_rows, set_cell, write_rows

from cohortpool.contract import resources
from cohortpool.validate import SubmissionError, ValidationOutcome, validate_submission
from cohortpool.validate.docs import REMOTE_FETCH, web_references

pytestmark = pytest.mark.slow


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ValidationOutcome]:
    root = tmp_path_factory.mktemp("clean")
    submission = copy_clean(root / "submission")
    out = root / "validated"
    return out, validate_submission(submission, out)


@pytest.fixture(scope="module")
def defects(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ValidationOutcome]:
    """The planted-defect kinds of the synthetic consortium, plus a warning-only row."""
    root = tmp_path_factory.mktemp("defects")
    sub = copy_clean(root / "submission")
    set_cell(sub, "clinical", 2, "sex", "male")
    set_cell(sub, "clinical", 3, "bmi", "231.70")
    set_cell(sub, "reads", 5, "level", "L7")
    set_cell(sub, "reads", 1, "marrow_oedema", "yes")  # an XR read: warning, still loads
    header, rows = read_rows(sub / "reads.csv")
    rows.insert(8, dict(rows[7]))  # an exact duplicate of the 8th read, right after it
    orphan = {**rows[1], "patient_id": "P0000000000000000", "accession_id": "A0000000000000000"}
    rows.insert(12, orphan)
    for number, row in enumerate(rows, 1):
        row["source_row"] = str(number)
    write_rows(sub / "reads.csv", header, rows)
    out = root / "validated"
    return out, validate_submission(sub, out)


def test_clean_submission_accepts_every_row_and_exits_zero(clean: tuple[Path, ValidationOutcome]) -> None:
    out, outcome = clean
    assert outcome.exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "passed"
    assert summary["batch_id"] == outcome.batch_id
    assert outcome.batch_id.startswith("site02_2025-03-01_") and len(outcome.batch_id) == 30
    assert {t: (s["rows_in"], s["accepted"], s["quarantined"]) for t, s in summary["tables"].items()} == {
        "clinical": (4, 4, 0),
        "reads": (18, 18, 0),
        "imaging_manifest": (28, 28, 0),
    }
    assert len(lines(out, "quarantine.csv")) == 0
    assert len(lines(out, "warnings.csv")) == 0
    assert summary["expectations"]["errored"] == []


def test_accepted_parquet_has_contract_types_and_lineage(clean: tuple[Path, ValidationOutcome]) -> None:
    out, outcome = clean
    table = pq.read_table(out / "accepted" / "clinical.parquet")
    types = {f.name: str(f.type) for f in table.schema}
    assert types["age_years"] == "int32"
    assert types["bmi"] == "double"
    assert types["first_exam_date"] == "date32[day]"
    assert types["source_row"] == "int32"
    frame = table.to_pandas()
    assert list(frame.columns[-3:]) == ["batch_id", "source_file", "source_sha256"]
    assert set(frame["batch_id"]) == {outcome.batch_id}
    assert set(frame["source_file"]) == {"clinical.csv"}
    assert set(frame["source_sha256"]) == {outcome.tables["clinical"].source_sha256}
    assert list(frame["source_row"]) == [1, 2, 3, 4]


def test_same_submission_gives_byte_identical_batch(
    clean: tuple[Path, ValidationOutcome], tmp_path: Path
) -> None:
    out, _ = clean
    again = tmp_path / "again"
    validate_submission(copy_clean(tmp_path / "submission"), again)
    assert _files(again) == _files(out)


def test_planted_defects_are_quarantined_with_reasons_and_nothing_else(
    defects: tuple[Path, ValidationOutcome],
) -> None:
    out, outcome = defects
    assert outcome.exit_code == 1
    quarantine = lines(out, "quarantine.csv")
    got = sorted(
        zip(quarantine["table"], quarantine["source_row"].astype(int), quarantine["expectation"], strict=True)
    )
    assert got == [
        ("clinical", 2, "column_values_to_be_in_set(sex)"),
        ("clinical", 3, "column_values_to_be_between(bmi)"),
        ("reads", 5, "column_values_to_be_in_set(level)"),
        ("reads", 9, "compound_columns_to_be_unique(patient_id, level, modality)"),
        ("reads", 13, "crosstable:read_has_matching_study"),
        ("reads", 13, "crosstable:read_patient_in_clinical"),
    ]
    by_row = quarantine.set_index(["table", "source_row", "expectation"])
    assert by_row.loc[("clinical", "2", "column_values_to_be_in_set(sex)"), "value"] == "male"
    assert by_row.loc[("clinical", "3", "column_values_to_be_between(bmi)"), "value"] == "231.70"
    duplicate = by_row.loc[("reads", "9", "compound_columns_to_be_unique(patient_id, level, modality)")]
    assert "duplicate of source row 8" in duplicate["reason"]
    assert set(quarantine["severity"]) == {"error"}
    warnings = lines(out, "warnings.csv")
    assert list(zip(warnings["table"], warnings["source_row"], strict=True)) == [("reads", "1")]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tables"]["reads"] == {
        **summary["tables"]["reads"],
        "rows_in": 20,
        "accepted": 17,
        "quarantined": 3,
        "warnings": 1,
    }
    accepted = pd.read_parquet(out / "accepted" / "reads.parquet")
    # the warning row (1) and the first copy of the duplicate (8) load
    assert sorted(accepted["source_row"]) == [r for r in range(1, 21) if r not in (5, 9, 13)]


def test_rows_in_equal_accepted_plus_quarantined(defects: tuple[Path, ValidationOutcome]) -> None:
    out, _ = defects
    summary = json.loads((out / "summary.json").read_text())
    quarantine = lines(out, "quarantine.csv")
    for table, counts in summary["tables"].items():
        assert counts["rows_in"] == counts["accepted"] + counts["quarantined"], table
        assert counts["quarantined"] == quarantine[quarantine["table"] == table]["source_row"].nunique()
        assert len(pd.read_parquet(out / "accepted" / f"{table}.parquet")) == counts["accepted"]


def test_clinical_values_never_reach_data_docs(defects: tuple[Path, ValidationOutcome]) -> None:
    out, _ = defects
    pages = {p.name: p.read_text() for p in (out / "data_docs").rglob("*.html")}
    assert "index.html" in pages and any(name.startswith("clinical.") for name in pages)
    for name, html in pages.items():
        assert "male" not in html.replace("female", ""), name
        assert "231.7" not in html, name
    # reads are pseudonymous codes: their sample of unexpected values may be shown
    assert "L7" in pages["reads.typed.html"]


def test_data_docs_fetch_nothing_from_the_network_and_are_linked(
    defects: tuple[Path, ValidationOutcome],
) -> None:
    out, outcome = defects
    summary = json.loads((out / "summary.json").read_text())
    index = out / summary["data_docs"]
    assert index == outcome.data_docs and index.is_file()
    html = index.read_text()
    assert outcome.batch_id in html
    assert "gx/reads.typed.html" in html
    for page in (out / "data_docs").rglob("*.html"):
        text = page.read_text()
        assert not REMOTE_FETCH.search(text), page
        assert web_references(text) == [], page  # no link out either (GX's newsletter, its site)
        assert "<script" not in text and "Data asset: None" not in text, page
    reads = (out / "data_docs" / "gx" / "reads.typed.html").read_text()
    assert "Data asset: reads.csv" in reads and outcome.batch_id in reads


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ValidationOutcome]:
    """reads.csv missing, imaging_manifest.csv without study_uid: clinical must still validate."""
    root = tmp_path_factory.mktemp("broken")
    sub = copy_clean(root / "submission")
    (sub / "reads.csv").unlink()
    frame = pd.read_csv(sub / "imaging_manifest.csv", dtype=str, keep_default_na=False)
    frame.drop(columns=["study_uid"]).to_csv(sub / "imaging_manifest.csv", index=False)
    return root / "out", validate_submission(sub, root / "out")


def test_missing_file_rejects_that_table_and_validates_the_others(
    broken_files: tuple[Path, ValidationOutcome],
) -> None:
    out, outcome = broken_files
    assert outcome.exit_code == 1
    reads = outcome.tables["reads"]
    assert reads.rejected is not None and "reads.csv" in reads.rejected and "missing" in reads.rejected
    assert (reads.rows_in, reads.accepted, reads.quarantined) == (0, 0, 0)
    clinical = outcome.tables["clinical"]
    assert (clinical.rejected, clinical.accepted, clinical.quarantined) == (None, 4, 0)
    assert len(pd.read_parquet(out / "accepted" / "reads.parquet")) == 0
    assert len(pd.read_parquet(out / "accepted" / "clinical.parquet")) == 4


def test_missing_column_rejects_the_table_naming_file_and_column(
    broken_files: tuple[Path, ValidationOutcome],
) -> None:
    out, outcome = broken_files
    manifest = outcome.tables["imaging_manifest"]
    assert manifest.rejected is not None
    assert "imaging_manifest.csv" in manifest.rejected and "study_uid" in manifest.rejected
    assert (manifest.rows_in, manifest.accepted, manifest.quarantined) == (28, 0, 28)
    quarantine = lines(out, "quarantine.csv")
    rows = quarantine[quarantine["table"] == "imaging_manifest"]
    assert sorted(rows["source_row"].astype(int)) == list(range(1, 29))
    assert set(rows["expectation"]) == {"table_rejected"}


@pytest.fixture(scope="module")
def broken_content(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ValidationOutcome]:
    """clinical.csv in Latin-1, and a reads suite with an expectation that cannot run."""
    root = tmp_path_factory.mktemp("content")
    sub = copy_clean(root / "submission")
    text = (sub / "clinical.csv").read_text(encoding="utf-8").replace(",lung,", ",poumon é,")
    (sub / "clinical.csv").write_bytes(text.encode("latin-1"))
    project = root / "project"
    (project / "expectations").mkdir(parents=True)
    (project / "sql").mkdir()
    src = Path(__file__).resolve().parents[2] / "expectations"
    for name in os.listdir(src):
        (project / "expectations" / name).write_bytes((src / name).read_bytes())
    suite = json.loads((project / "expectations" / "reads.json").read_text())
    suite["expectations"].append(
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "no_such_column", "min_value": 0},
            "meta": {"severity": "warning", "reason": "a reviewer's typo"},
        }
    )
    (project / "expectations" / "reads.json").write_text(json.dumps(suite))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resources, "suites_dir", lambda: project / "expectations")
        return root / "out", validate_submission(sub, root / "out")


def test_table_not_in_utf8_is_rejected_naming_the_line(
    broken_content: tuple[Path, ValidationOutcome],
) -> None:
    _, outcome = broken_content
    clinical = outcome.tables["clinical"]
    assert (
        clinical.rejected is not None and "not UTF-8" in clinical.rejected and "line 4" in clinical.rejected
    )
    assert (clinical.rows_in, clinical.quarantined) == (4, 4)
    assert outcome.tables["imaging_manifest"].accepted == 28


def test_expectation_that_errors_rejects_its_table_loudly(
    broken_content: tuple[Path, ValidationOutcome],
) -> None:
    """A suite mistake (a column that does not exist) must not pass as an ordinary failure."""
    out, outcome = broken_content
    reads = outcome.tables["reads"]
    assert reads.rejected is not None and "could not be evaluated" in reads.rejected
    assert (reads.accepted, reads.quarantined) == (0, 18)
    summary = json.loads((out / "summary.json").read_text())
    assert any("no_such_column" in e for e in summary["expectations"]["errored"])
    assert outcome.exit_code == 1


def test_folder_without_submission_json_is_bad_usage(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    (sub / "submission.json").unlink()
    with pytest.raises(SubmissionError, match=r"submission\.json"):
        validate_submission(sub, tmp_path / "out")


def test_withheld_submission_is_bad_usage_naming_the_reason(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    (sub / "submission.json").rename(sub / "release_blocked.json")
    with pytest.raises(SubmissionError, match="withheld"):
        validate_submission(sub, tmp_path / "out")


def test_refuses_to_overwrite_a_folder_that_is_not_a_batch(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(SubmissionError, match="not a validated batch"):
        validate_submission(copy_clean(tmp_path / "submission"), out)
    assert (out / "precious.txt").read_text() == "keep me"
