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


def _read_has_study_by_lookup(tables: dict[str, pd.DataFrame]) -> list[int]:
    """The rule spelled out row by row (the definition the vectorised check must keep)."""
    manifest, reads = tables["imaging_manifest"], tables["reads"]
    studies = set(zip(manifest["patient_id"], manifest["modality"], strict=True))
    options = {"XR": ("DX", "CR"), "CT": ("CT",), "MR": ("MR",)}
    return [
        n
        for n, (patient, modality) in enumerate(zip(reads["patient_id"], reads["modality"], strict=True))
        if not any((patient, dicom) in studies for dicom in options.get(modality, ()))
    ]


def test_read_has_study_matches_its_row_by_row_definition_on_odd_values() -> None:
    text = pd.StringDtype("pyarrow", na_value=float("nan"))
    reads = pd.DataFrame(
        {
            "patient_id": pd.array([P1, P1, P1, None, None, P2, P2, P3, P1, P2], dtype=text),
            "modality": pd.array(["XR", "CT", "MR", "CT", "MR", None, "US", "XR", "xr", "MR"], dtype=text),
        }
    )
    manifest = pd.DataFrame(
        {
            "patient_id": pd.array([P1, P1, None, P2, P3, P2], dtype=text),
            "modality": pd.array(["DX", "MR", "CT", None, "CR", "US"], dtype=text),
        }
    )
    tables = {
        "clinical": pd.DataFrame({"patient_id": [P1, P2, P3]}),
        "reads": reads,
        "imaging_manifest": manifest,
    }
    expected = _read_has_study_by_lookup(tables)
    assert expected == [1, 4, 5, 6, 8, 9]  # the fixture exercises misses of every kind
    found = sorted(
        f.position  # type: ignore[misc]
        for f in check_crosstable(tables)
        if f.expectation == "crosstable:read_has_matching_study"
    )
    assert found == expected


def test_read_has_study_with_an_empty_manifest_fails_every_read() -> None:
    tables = _tables()
    tables["imaging_manifest"] = tables["imaging_manifest"].iloc[0:0]
    found = {f[1] for f in _found(tables) if f[2] == "crosstable:read_has_matching_study"}
    assert found == {0, 1, 2}


def test_membership_checks_match_pandas_isin_with_missing_values() -> None:
    text = pd.StringDtype("pyarrow", na_value=float("nan"))
    tables = {
        "clinical": pd.DataFrame({"patient_id": pd.array([P1, None, P3, P3], dtype=text)}),
        "reads": pd.DataFrame(
            {"patient_id": pd.array([P1, None, P2, P1], dtype=text), "modality": ["XR"] * 4}
        ),
        "imaging_manifest": pd.DataFrame(
            {"patient_id": pd.array([None, P3, P2], dtype=text), "modality": ["DX"] * 3}
        ),
    }
    found = {(f[0], f[1], f[2]) for f in _found(tables) if f[2] != "crosstable:read_has_matching_study"}
    expected = set()
    for name, table, other in (
        ("crosstable:read_patient_in_clinical", "reads", "clinical"),
        ("crosstable:patient_has_imaging", "clinical", "imaging_manifest"),
        ("crosstable:patient_has_fractured_vertebra_read", "clinical", "reads"),
        ("crosstable:series_patient_in_clinical", "imaging_manifest", "clinical"),
    ):
        missing = ~tables[table]["patient_id"].isin(tables[other]["patient_id"].dropna())
        expected |= {(table, int(n), name) for n in missing[missing].index}
    assert ("reads", 1, "crosstable:read_patient_in_clinical") in expected  # a missing id is never "in"
    assert found == expected
