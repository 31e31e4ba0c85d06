"""Cross-table checks: referential integrity and per-patient completeness between the three tables."""

from __future__ import annotations

import pandas as pd

from cohortpool.validate.crosstable import check_crosstable

P1, P2, P3 = "P" + "1" * 16, "P" + "2" * 16, "P" + "3" * 16


def _tables() -> dict[str, pd.DataFrame]:
    return {
        "clinical": pd.DataFrame({"patient_id": [P1, P2]}),
        "reads": pd.DataFrame({"patient_id": [P1, P1, P2], "modality": ["XR", "MR", "CT"]}),
        "imaging_manifest": pd.DataFrame({"patient_id": [P1, P1, P2], "modality": ["CR", "MR", "CT"]}),
    }


def _found(tables: dict[str, pd.DataFrame]) -> set[tuple[str, int, str, str]]:
    return {(f.table, f.position, f.expectation, f.severity) for f in check_crosstable(tables)}  # type: ignore[misc]


def test_consistent_tables_have_no_findings() -> None:
    assert _found(_tables()) == set()


def test_read_of_unknown_patient_is_an_error() -> None:
    tables = _tables()
    tables["reads"].loc[2, "patient_id"] = P3
    assert ("reads", 2, "crosstable:read_patient_in_clinical", "error") in _found(tables)


def test_xr_read_needs_a_dx_or_cr_study_of_the_same_patient() -> None:
    tables = _tables()
    tables["imaging_manifest"].loc[0, "modality"] = "CT"  # P1 loses its only radiograph
    assert _found(tables) == {("reads", 0, "crosstable:read_has_matching_study", "error")}


def test_patient_without_imaging_or_reads_is_an_error_and_orphan_series_a_warning() -> None:
    tables = _tables()
    tables["clinical"] = pd.DataFrame({"patient_id": [P1, P2, P3]})
    tables["imaging_manifest"].loc[2, "patient_id"] = "P" + "9" * 16
    found = _found(tables)
    assert ("clinical", 2, "crosstable:patient_has_imaging", "error") in found
    assert ("clinical", 2, "crosstable:patient_has_fractured_vertebra_read", "error") in found
    assert ("clinical", 1, "crosstable:patient_has_imaging", "error") in found
    assert ("imaging_manifest", 2, "crosstable:series_patient_in_clinical", "warning") in found


def test_checks_against_a_rejected_table_are_skipped() -> None:
    tables = _tables()
    del tables["clinical"]
    tables["reads"].loc[2, "patient_id"] = P3
    assert {f[2] for f in _found(tables)} == {"crosstable:read_has_matching_study"}
