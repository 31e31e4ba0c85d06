"""The site's feature tables, ``clinical.csv`` and ``reads.csv``, as data contract section 1 specifies.

Rows are lists of strings in the contract's column order, so planting defects and writing stay byte-exact
(no float formatting surprises, fixed line endings).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cohortpool.contract import FINDINGS
from cohortpool.contract.tables import CLINICAL, READS
from cohortpool.synth.cohort import Cohort
from cohortpool.synth.findings import MODALITIES, genant_grade

#: a hospital's export, every column (identifiers included: the site drops them before anything leaves)
CLINICAL_COLUMNS = CLINICAL.export_columns
READS_COLUMNS = READS.export_columns

Row = list[str]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def clinical_rows(cohort: Cohort) -> list[Row]:
    """One row per patient, in export order."""
    return [
        [
            p.mrn,
            p.name.display,
            p.birth_date.isoformat(),
            p.sex,
            p.address,
            p.phone,
            f"{p.height_cm:.1f}",
            f"{p.weight_kg:.1f}",
            f"{p.bmi:.2f}",
            f"{p.t_score:.1f}",
            p.diagnosis,
            p.pathology_confirmed,
            p.primary_tumour,
            p.first_exam_date.isoformat(),
        ]
        for p in cohort.patients
    ]


def reads_rows(cohort: Cohort) -> list[Row]:
    """One row per fractured vertebra per modality read: patient, then modality, then level."""
    rows: list[Row] = []
    for p in cohort.patients:
        for modality in MODALITIES:
            study = p.studies[modality]
            for v in p.vertebrae:
                loss = v.measured_loss[modality]
                rows.append(
                    [
                        p.mrn,
                        study.accession,
                        modality,
                        v.level,
                        study.reader.display,
                        study.read_date.isoformat(),
                        *(_yes(v.reads[modality][f]) for f in FINDINGS),
                        str(genant_grade(loss)),
                        f"{loss:.1f}",
                    ]
                )
    return rows


def write_csv(path: Path, columns: tuple[str, ...], rows: list[Row]) -> None:
    """UTF-8 without BOM, comma-separated, ``\\n`` line ends, a header row (data contract).

    The hospital's export, written as a hospital writes it: cells go out verbatim (a planted formula
    stays live), unlike :func:`cohortpool.contract.csvio.write_csv`, which makes every cell safe.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))
