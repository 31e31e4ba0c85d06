"""Checks that need two tables of the same submission (referential integrity, completeness per patient).

Why pandas and not GX or SQL: GX 1.x has no row-level cross-table expectation (the only one,
``expect_table_row_count_to_equal_other_table``, compares counts), and SQL files may be read only through
``cohortpool.warehouse.sql``, which the validation stage must not import (stages exchange files and
DataFrames). These are a handful of set lookups on small tables; pandas does them in milliseconds.

Each check compares against the submitted table as a whole, not only its accepted rows, so that one bad
row is reported once, where it is, instead of cascading into its related rows. The warehouse views join
patients and reads, so an accepted read of a quarantined patient does not reach an analysis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

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


def _read_patient_in_clinical(t: Mapping[str, pd.DataFrame]) -> pd.Series:
    return ~t["reads"]["patient_id"].isin(t["clinical"]["patient_id"].dropna())


def _read_has_study(t: Mapping[str, pd.DataFrame]) -> pd.Series:
    manifest = t["imaging_manifest"]
    studies = set(zip(manifest["patient_id"], manifest["modality"], strict=True))
    reads = t["reads"]
    return pd.Series(
        [
            not any((patient, dicom) in studies for dicom in READ_TO_DICOM_MODALITY.get(modality, ()))
            for patient, modality in zip(reads["patient_id"], reads["modality"], strict=True)
        ],
        index=reads.index,
        dtype=bool,
    )


def _patient_has_imaging(t: Mapping[str, pd.DataFrame]) -> pd.Series:
    return ~t["clinical"]["patient_id"].isin(t["imaging_manifest"]["patient_id"].dropna())


def _patient_has_read(t: Mapping[str, pd.DataFrame]) -> pd.Series:
    return ~t["clinical"]["patient_id"].isin(t["reads"]["patient_id"].dropna())


def _series_patient_in_clinical(t: Mapping[str, pd.DataFrame]) -> pd.Series:
    return ~t["imaging_manifest"]["patient_id"].isin(t["clinical"]["patient_id"].dropna())


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
