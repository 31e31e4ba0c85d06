"""Checks that need two tables of the same submission (referential integrity, completeness per patient).

Why pandas and not GX or SQL: GX 1.x has no row-level cross-table expectation (the only one,
``expect_table_row_count_to_equal_other_table``, compares counts), and SQL files may be read only through
``cohortpool.warehouse.sql``, which the validation stage must not import (stages exchange files and
DataFrames). These are set lookups, done on factorized numbers (``np.isin``): under a second for 10^6 reads.

Each check compares against the submitted table as a whole, not only its accepted rows, so that one bad
row is reported once, where it is, instead of cascading into its related rows. The warehouse views join
patients and reads, so an accepted read of a quarantined patient does not reach an analysis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohortpool.validate.findings import ERROR, WARNING, Finding

#: a read's modality (the reads table's code) -> the DICOM modalities of a matching study
READ_TO_DICOM_MODALITY: dict[str, tuple[str, ...]] = {"XR": ("DX", "CR"), "CT": ("CT",), "MR": ("MR",)}


@dataclass(frozen=True)
class CrossCheck:
    """One cross-table rule: the table whose rows it judges, its severity and its reason."""

    name: str
    table: str
    needs: tuple[str, ...]
    severity: str
    reason: str
    columns: tuple[str, ...]
    failing: Callable[[Mapping[str, pd.DataFrame]], pd.Series]


def _not_in(values: pd.Series, others: pd.Series) -> pd.Series:
    """Where ``values`` is missing or not among the present ``others``: ``~values.isin(others.dropna())``.

    Computed on numbers (``factorize`` over both, then ``np.isin``): pandas' ``isin`` on Arrow-backed text
    took 12 s for 10^6 reads against 125,000 patients (issue 16 item 2).
    """
    numbers, _ = pd.factorize(pd.concat([values, others], ignore_index=True))  # missing: -1
    mine, theirs = numbers[: len(values)], numbers[len(values) :]
    present = np.isin(mine, theirs[theirs >= 0])  # a missing value (-1) is never present
    return pd.Series(~present, index=values.index, dtype=bool)


def _read_patient_in_clinical(t: Mapping[str, pd.DataFrame]) -> pd.Series:
    return _not_in(t["reads"]["patient_id"], t["clinical"]["patient_id"])


def _read_has_study(t: Mapping[str, pd.DataFrame]) -> pd.Series:
    """Reads with no study of a matching DICOM modality for their patient (a missing patient_id matches a
    manifest row whose patient_id is missing too, as Python's tuple lookup did before).

    Vectorised: patients are numbered once over both tables (``factorize``, a missing value its own
    number) and looked up per modality with ``np.isin``; a Python loop over 10^6 reads took 40 s and
    held a string object per cell (``benchmarks/RESULTS.md``, issue 16 item 2).
    """
    manifest = t["imaging_manifest"]
    reads = t["reads"]
    numbers, _ = pd.factorize(
        pd.concat([manifest["patient_id"], reads["patient_id"]], ignore_index=True), use_na_sentinel=False
    )
    study_patients, read_patients = numbers[: len(manifest)], numbers[len(manifest) :]
    manifest_modality = manifest["modality"]
    read_modality = reads["modality"]
    failing = np.ones(len(reads), dtype=bool)  # a modality outside the mapping (or missing) never matches
    for modality, dicoms in READ_TO_DICOM_MODALITY.items():
        rows = np.flatnonzero(_equals(read_modality, modality))
        for dicom in dicoms:
            having = np.unique(study_patients[_equals(manifest_modality, dicom)])
            failing[rows[np.isin(read_patients[rows], having)]] = False
    return pd.Series(failing, index=reads.index, dtype=bool)


def _equals(column: pd.Series, value: str) -> np.ndarray:
    """Where ``column`` holds exactly ``value`` (a missing value never does)."""
    return np.asarray(column.eq(value).fillna(False), dtype=bool)


def _patient_has_imaging(t: Mapping[str, pd.DataFrame]) -> pd.Series:
    return _not_in(t["clinical"]["patient_id"], t["imaging_manifest"]["patient_id"])


def _patient_has_read(t: Mapping[str, pd.DataFrame]) -> pd.Series:
    return _not_in(t["clinical"]["patient_id"], t["reads"]["patient_id"])


def _series_patient_in_clinical(t: Mapping[str, pd.DataFrame]) -> pd.Series:
    return _not_in(t["imaging_manifest"]["patient_id"], t["clinical"]["patient_id"])


CHECKS: tuple[CrossCheck, ...] = (
    CrossCheck(
        "crosstable:read_patient_in_clinical",
        "reads",
        ("reads", "clinical"),
        ERROR,
        "the read's patient_id is not in clinical.csv",
        ("patient_id",),
        _read_patient_in_clinical,
    ),
    CrossCheck(
        "crosstable:read_has_matching_study",
        "reads",
        ("reads", "imaging_manifest"),
        ERROR,
        "no study of the read's modality for this patient in imaging_manifest.csv (XR needs DX or CR)",
        ("patient_id", "modality"),
        _read_has_study,
    ),
    CrossCheck(
        "crosstable:patient_has_imaging",
        "clinical",
        ("clinical", "imaging_manifest"),
        ERROR,
        "the patient has no series in imaging_manifest.csv",
        ("patient_id",),
        _patient_has_imaging,
    ),
    CrossCheck(
        "crosstable:patient_has_fractured_vertebra_read",
        "clinical",
        ("clinical", "reads"),
        ERROR,
        "the patient has no fractured-vertebra read in reads.csv",
        ("patient_id",),
        _patient_has_read,
    ),
    CrossCheck(
        "crosstable:series_patient_in_clinical",
        "imaging_manifest",
        ("imaging_manifest", "clinical"),
        WARNING,
        "the series' patient_id is not in clinical.csv",
        ("patient_id",),
        _series_patient_in_clinical,
    ),
)


def check_crosstable(tables: Mapping[str, pd.DataFrame]) -> list[Finding]:
    """Findings of every cross-table check whose tables are all present (typed frames, by table).

    A check whose other table was rejected is skipped: its rows cannot be judged against a table the hub
    does not have, and the rejection is already reported.
    """
    findings: list[Finding] = []
    for check in CHECKS:
        if not all(name in tables for name in check.needs):
            continue
        failing = check.failing(tables)
        findings.extend(
            Finding(check.table, int(pos), check.name, check.severity, check.reason, check.columns)
            for pos in failing[failing].index
        )
    return findings
