"""k-anonymity of a submission's quasi-identifiers and the release block (cohortpool.features.kanon)."""

from __future__ import annotations

from pathlib import Path

from cohortpool.features.kanon import BLOCKED_FILE, SUBMISSION_FILE, k_anonymity, withhold

HEADER = "site_id,patient_id,age_years,sex,first_exam_date,bmi\n"


def _table(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "clinical.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_k_is_the_smallest_group_of_age_sex_site_and_date(tmp_path: Path) -> None:
    rows = [
        "site01,P1,70,F,2024-01-01,20",
        "site01,P2,70,F,2024-01-01,30",  # same quasi-identifiers, other BMI: one class of 2
        "site01,P3,70,F,2024-01-01,25",
        "site01,P4,71,F,2024-01-01,25",  # unique on age
    ]
    report = k_anonymity(_table(tmp_path, rows), min_k=2)
    assert (report.k, report.rows, report.classes, report.rows_below_min_k) == (1, 4, 2, 1)
    assert report.blocked
    assert report.as_dict()["release_blocked"] is True
    assert "below the minimum 2" in report.reason()


def test_the_check_is_off_by_default_and_passes_at_the_minimum(tmp_path: Path) -> None:
    rows = ["site01,P1,70,F,2024-01-01,20", "site01,P2,70,F,2024-01-01,21"]
    assert not k_anonymity(_table(tmp_path, rows)).blocked
    assert k_anonymity(_table(tmp_path, rows)).k == 2
    assert not k_anonymity(_table(tmp_path, rows), min_k=2).blocked
    assert k_anonymity(_table(tmp_path, rows), min_k=3).blocked


def test_an_absent_table_has_k_zero_and_is_never_blocked(tmp_path: Path) -> None:
    report = k_anonymity(tmp_path / "clinical.csv", min_k=5)
    assert report.k == 0 and not report.blocked


def test_withhold_leaves_no_submission_manifest(tmp_path: Path) -> None:
    (tmp_path / SUBMISSION_FILE).write_text("{}", encoding="utf-8")
    withhold(tmp_path)
    assert not (tmp_path / SUBMISSION_FILE).exists() and (tmp_path / BLOCKED_FILE).exists()
