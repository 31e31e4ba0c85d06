"""k-anonymity of a submission's quasi-identifiers and the release block (cohortpool.features.kanon)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohortpool.config import DeidConfig
from cohortpool.features.kanon import (
    BLOCKED_FILE,
    QUASI_IDENTIFIERS,
    SUBMISSION_FILE,
    imaging_quasi_identifiers,
    k_anonymity,
    withhold,
)
from cohortpool.pipeline.runconfig import RunConfig
from cohortpool.pipeline.site import k_date_precision

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


def test_an_empty_submission_has_k_zero_and_is_not_blocked(tmp_path: Path) -> None:
    # nothing leaves the site: there is nothing to protect (a DICOM-only submission is not this case:
    # it used to get k = 0 and pass unchecked; its headers now count, see the tests below)
    report = k_anonymity(tmp_path / "clinical.csv", min_k=5, imaging=[], releases_data=False)
    assert report.k == 0 and report.source == "" and not report.blocked


def test_released_data_without_any_quasi_identifier_source_is_blocked_under_a_minimum(tmp_path: Path) -> None:
    # e.g. reads.csv rows with an empty clinical.csv and no DICOM: k cannot be assessed, so not released
    empty = _table(tmp_path, [])
    report = k_anonymity(empty, min_k=2, imaging=[], releases_data=True)
    assert report.unassessed and report.blocked
    assert "cannot be assessed" in report.reason()
    assert report.as_dict()["assessed"] is False and report.as_dict()["release_blocked"] is True
    assert not k_anonymity(empty, imaging=[], releases_data=True).blocked  # the check is off by default


def _record(patient: str, study: str, date: str, age: str = "", sex: str = "") -> dict[str, str]:
    return {"patient_id": patient, "study_uid": study, "series_uid": study + ".1", "study_date": date,
            "patient_age_years": age, "patient_sex": sex}  # fmt: skip


def test_dicom_quasi_identifiers_are_age_and_sex_at_the_earliest_study(tmp_path: Path) -> None:
    records = [
        _record("P2", "2.25.9", "2024-03-01", "71", "F"),  # a later study listed first
        _record("P2", "2.25.8", "2024-01-10", "70", "F"),
        _record("P2", "2.25.8", "2024-01-10", "", ""),  # an instance without them changes nothing
        _record("P1", "2.25.7", "", "65", "M"),  # no study date: the dated study is the first exam
        _record("P1", "2.25.6", "2023-05-05", "", "M"),  # ... and lacks the age: the next study's
        _record("", "2.25.5", "2023-05-05", "99", "F"),  # no patient: not counted
    ]
    rows = imaging_quasi_identifiers(records, "site01")
    assert rows == [("65", "M", "site01", "2023-05-05"), ("70", "F", "site01", "2024-01-10")]
    # what the profile removes from the headers is not released, so it does not tell patients apart
    assert imaging_quasi_identifiers(records, "site01", released=("site_id", "first_exam_date")) == [
        ("", "", "site01", "2023-05-05"),
        ("", "", "site01", "2024-01-10"),
    ]


def test_a_dicom_only_submission_is_held_to_the_minimum(tmp_path: Path) -> None:
    rows = [("70", "F", "site01", "")] * 2 + [("60", "M", "site01", "")]
    report = k_anonymity(tmp_path / "clinical.csv", min_k=2, imaging=rows, releases_data=True)
    assert (report.k, report.rows, report.classes, report.rows_below_min_k) == (1, 3, 2, 1)
    assert report.source == "dicom" and report.blocked
    assert "in the DICOM headers" in report.reason()
    privacy = report.as_dict()
    assert privacy["k_source"] == "dicom" and list(privacy["sources"]) == ["dicom"]
    assert not k_anonymity(tmp_path / "clinical.csv", min_k=2, imaging=rows[:2]).blocked


def test_k_is_the_smaller_of_the_clinical_table_and_the_dicom_headers(tmp_path: Path) -> None:
    table = _table(tmp_path, ["site01,P1,70,F,2024-01-01,20", "site01,P2,70,F,2024-01-01,21"])
    unique = [("70", "F", "site01", "2024-01-01"), ("70", "F", "site01", "2024-01-02")]
    report = k_anonymity(table, min_k=2, imaging=unique, imaging_released=("site_id", "first_exam_date"))
    assert (report.k, report.source, report.blocked) == (1, "dicom", True)
    sources = report.as_dict()["sources"]
    assert sources["clinical.csv"]["k_anonymity"] == 2 and sources["dicom"]["k_anonymity"] == 1
    assert sources["dicom"]["quasi_identifiers"] == ["site_id", "first_exam_date"]
    # equal k: the clinical table is named; no DICOM rows: the table alone decides
    same = k_anonymity(table, min_k=2, imaging=[("70", "F", "site01", "2024-01-01")] * 2)
    assert (same.k, same.source, same.blocked) == (2, "clinical.csv", False)
    assert k_anonymity(table, min_k=2, imaging=[]).as_dict()["sources"].keys() == {"clinical.csv"}


def test_withhold_leaves_no_submission_manifest(tmp_path: Path) -> None:
    (tmp_path / SUBMISSION_FILE).write_text("{}", encoding="utf-8")
    withhold(tmp_path)
    assert not (tmp_path / SUBMISSION_FILE).exists() and (tmp_path / BLOCKED_FILE).exists()


def test_the_first_exam_date_counts_at_the_chosen_precision(tmp_path: Path) -> None:
    rows = [
        "site01,P1,70,F,2024-01-03,20",
        "site01,P2,70,F,2024-01-29,21",  # same month as P1
        "site01,P3,70,F,2024-06-11,22",  # same year only
    ]
    table = _table(tmp_path, rows)
    by = {p: k_anonymity(table, min_k=2, date_precision=p) for p in ("day", "month", "year")}
    assert [by[p].k for p in ("day", "month", "year")] == [1, 1, 3]
    assert [by[p].classes for p in ("day", "month", "year")] == [3, 2, 1]
    assert by["day"].blocked and not by["year"].blocked
    assert by["year"].as_dict()["date_precision"] == "year"
    assert "dates by day" in by["day"].reason()


@pytest.mark.parametrize(
    ("options", "shift", "chosen", "expected"),
    [
        (("retain_long_modified_dates",), 365, "auto", "year"),
        (("retain_long_modified_dates",), 60, "auto", "month"),
        (("retain_long_modified_dates",), 7, "auto", "day"),
        (("retain_long_full_dates",), 365, "auto", "day"),  # real dates are released
        ((), 365, "auto", "year"),  # headers lose their dates; the tables' stay shifted
        (("retain_long_modified_dates",), 365, "day", "day"),  # an explicit choice wins
    ],
)
def test_auto_date_precision_follows_what_the_profile_releases(
    options: tuple[str, ...], shift: int, chosen: str, expected: str
) -> None:
    config = RunConfig(deid=DeidConfig(max_date_shift_days=shift), k_anonymity_date_precision=chosen)
    assert k_date_precision(config, options) == expected


def test_the_verdict_names_the_small_classes_and_what_splits_them(tmp_path: Path) -> None:
    rows = [
        "site01,P1,70,F,2024-01-01,20",
        "site01,P2,70,F,2024-01-01,21",
        "site01,P3,70,F,2024-01-01,22",
        "site01,P4,71,F,2024-01-01,23",  # unique on age only: one class of 4 without age
        "site01,P5,70,M,2024-01-01,24",  # unique on sex only
        "site01,P6,71,M,2024-01-01,25",  # unique on age and sex together
    ]
    report = k_anonymity(_table(tmp_path, rows), min_k=3)
    source = report.decisive
    assert source is not None and source.target == 3
    assert dict(source.small_classes) == {1: 3} and source.rows_below_target == 3
    drivers = {d.name: (d.k_without, d.separates) for d in source.drivers}
    # without age: (F: 4, M: 2) -> k 2; P4 alone reaches a class of 3+. Without sex: (70: 4, 71: 2)
    assert drivers == {"age_years": (2, 1), "sex": (2, 1), "first_exam_date": (1, 0)}
    lines = report.verdict()
    assert lines[0].startswith("k-anonymity 1 over age_years, sex, site_id, first_exam_date")
    assert lines[1] == "  3 of 6 patients in classes of fewer than 3 (3 of size 1)"
    assert "age_years (k 2 without it; alone separates 1 of them)" in lines[2]
    assert lines[3].startswith("  generalisations of the tables: none")
    recorded = report.as_dict()["sources"]["clinical.csv"]
    assert recorded["small_classes"] == {"1": 3} and recorded["drivers"]["sex"] == {
        "k_without": 2,
        "separates": 1,
    }
    for line in lines:  # counts and names only: no quasi-identifier value is printed
        assert "2024" not in line and "70" not in line.replace("k-anonymity", "")


def test_with_the_check_off_the_verdict_looks_for_unique_patients(tmp_path: Path) -> None:
    rows = ["site01,P1,70,F,2024-01-01,20", "site01,P2,70,F,2024-01-01,21", "site01,P3,80,M,2024-01-01,2"]
    report = k_anonymity(_table(tmp_path, rows))
    assert report.decisive is not None and report.decisive.target == 2
    assert report.verdict()[1] == "  1 of 3 patients in classes of fewer than 2 (1 of size 1)"
    fine = k_anonymity(_table(tmp_path, rows[:2]))
    assert fine.verdict()[1] == "  no class of fewer than 2 patients"


def test_a_consortium_may_count_more_clinical_columns(tmp_path: Path) -> None:
    path = tmp_path / "clinical.csv"
    path.write_text(
        "site_id,patient_id,age_years,sex,first_exam_date,primary_tumour\n"
        "site01,P1,70,F,2024-01-01,lung\nsite01,P2,70,F,2024-01-01,thyroid\n",
        encoding="utf-8",
    )
    names = (*QUASI_IDENTIFIERS, "primary_tumour")
    assert k_anonymity(path).k == 2
    report = k_anonymity(
        path, min_k=2, quasi_identifiers=names, imaging=[("70", "F", "site01", "2024-01-01", "")] * 2
    )
    assert (report.k, report.source, report.blocked) == (1, "clinical.csv", True)
    assert report.as_dict()["quasi_identifiers"] == list(names)
    assert "primary_tumour" in report.reason()
    # the DICOM headers carry no primary tumour: the column counts as one value for every patient
    rows = imaging_quasi_identifiers(
        [_record("P1", "2.25.1", "2024-01-01", "70", "F")], "site01", names=names
    )
    assert rows == [("70", "F", "site01", "2024-01-01", "")]


def test_the_generalisations_are_recorded_and_shown(tmp_path: Path) -> None:
    table = _table(tmp_path, ["site01,P1,70,F,2024-01-01,20", "site01,P2,70,F,2024-01-01,21"])
    done = {"age_band_years": 5, "age_top_code": None, "first_exam_date_precision": "month",
            "merge_rare_categories_below": 3, "merged_columns": ["primary_tumour"]}  # fmt: skip
    report = k_anonymity(table, generalisations=done)
    assert report.as_dict()["generalisations"] == done
    assert report.verdict()[-1] == (
        "  generalisations of the tables: age in 5-year bands, first exam date by month, primary_tumour "
        "terms of fewer than 3 patients merged"
    )
    dicom = k_anonymity(tmp_path / "none.csv", imaging=[("70", "F", "site01", "2024-01-01")])
    assert "the DICOM headers keep PatientAge" in dicom.verdict()[-1]
