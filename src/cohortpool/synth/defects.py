"""Planted defects: the realistic mistakes of hospital exports, and the truth file that lists them.

Site 1 stays clean (it is the paper's cohort). The nine defect kinds are dealt round-robin over the other
sites in the order of :data:`KINDS`, so with three sites ``site02`` gets kinds 1, 3, 5, 7, 9 and ``site03``
kinds 2, 4, 6, 8; with more sites each kind still appears once. Targets (patient, row, file) are drawn from a
generator seeded by the consortium seed and the site, so the same seed plants the same defects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from cohortpool.synth.cohort import Cohort, Patient
from cohortpool.synth.dicom_builder import PRIVATE_CREATOR, file_meta
from cohortpool.synth.pixels import screenshot
from cohortpool.synth.tables import CLINICAL_COLUMNS, READS_COLUMNS, Row
from cohortpool.synth.vendors import SOP_SC

#: (kind, stage, reason) in dealing order
KINDS: tuple[tuple[str, str, str], ...] = (
    ("sex_text", "validate", "sex coded 'male' instead of M/F"),
    ("bmi_typo", "validate", "BMI of 230 (decimal point lost)"),
    ("birth_after_exam", "validate", "birth date after the first exam date"),
    ("duplicate_read", "validate", "read row exported twice"),
    ("orphan_read", "validate", "read for an MRN that is not in clinical.csv"),
    ("unknown_level", "validate", "vertebral level L7 does not exist"),
    ("truncated_dicom", "deid", "DICOM file cut short during transfer"),
    ("non_dicom_file", "deid", "non-DICOM file (Windows thumbnail cache) in the export"),
    (
        "burned_in_screenshot",
        "deid",
        "secondary-capture screenshot with the patient's name burned into the pixels",
    ),
)


def kinds_for(site_number: int, sites: int) -> list[str]:
    """The defect kinds planted at a site (none at site 1)."""
    others = list(range(2, sites + 1))
    if site_number == 1 or not others:
        return []
    return [kind for i, (kind, _, _) in enumerate(KINDS) if others[i % len(others)] == site_number]


@dataclass
class Planted:
    """One defect before its final row number is known."""

    kind: str
    table: str | None
    file: str | None
    row_obj: Row | None
    mrn: str
    column: str | None
    value: str | None


def _stage_reason(kind: str) -> tuple[str, str]:
    for k, stage, reason in KINDS:
        if k == kind:
            return stage, reason
    raise KeyError(kind)


def plant_rows(
    cohort: Cohort, kinds: list[str], seed: int, clinical: list[Row], reads: list[Row]
) -> list[Planted]:
    """Apply the table defects of ``kinds`` to the rows in place; return what was planted."""
    rng = np.random.default_rng([seed, cohort.profile.number, 99])
    col = {c: i for i, c in enumerate(CLINICAL_COLUMNS)}
    rcol = {c: i for i, c in enumerate(READS_COLUMNS)}
    # distinct targets where the site is big enough (tiny benchmark sites may reuse a patient)
    patient_pick = [int(i) for i in rng.choice(len(clinical), size=min(3, len(clinical)), replace=False)]
    patient_pick = [patient_pick[k % len(patient_pick)] for k in range(3)]
    read_pick = [int(i) for i in rng.choice(len(reads), size=min(3, len(reads)), replace=False)]
    planted: list[Planted] = []
    originals = list(reads)  # positions chosen before insertions
    for kind in kinds:
        if kind == "sex_text":
            row = clinical[patient_pick[0]]
            row[col["sex"]] = "male"
            planted.append(Planted(kind, "clinical", None, row, row[0], "sex", "male"))
        elif kind == "bmi_typo":
            row = clinical[patient_pick[1]]
            row[col["bmi"]] = "230.00"
            planted.append(Planted(kind, "clinical", None, row, row[0], "bmi", "230.00"))
        elif kind == "birth_after_exam":
            row = clinical[patient_pick[2]]
            exam = dt.date.fromisoformat(row[col["first_exam_date"]])
            birth = dt.date.fromisoformat(row[col["birth_date"]])
            wrong = dt.date(exam.year + 1, birth.month, min(birth.day, 28)).isoformat()
            row[col["birth_date"]] = wrong
            planted.append(Planted(kind, "clinical", None, row, row[0], "birth_date", wrong))
        elif kind == "duplicate_read":
            source = originals[read_pick[0]]
            copy = list(source)
            reads.insert(next(i for i, r in enumerate(reads) if r is source) + 1, copy)
            planted.append(Planted(kind, "reads", None, copy, copy[0], None, None))
        elif kind == "orphan_read":
            source = originals[read_pick[1]]
            orphan = list(source)
            known = {r[0] for r in clinical}
            mrn = source[0]
            while mrn in known:  # same format as the site's MRNs, but nobody's
                mrn = mrn[:-4] + f"{int(rng.integers(0, 10000)):04d}"
            orphan[rcol["mrn"]] = mrn
            accessions = {r[rcol["accession_number"]] for r in reads}
            accession = source[rcol["accession_number"]][:-3] + "999"
            while accession in accessions:  # a study this site never sent
                accession = accession[:-3] + f"{int(rng.integers(0, 1000)):03d}"
            orphan[rcol["accession_number"]] = accession
            reads.insert(int(rng.integers(0, len(reads) + 1)), orphan)
            planted.append(Planted(kind, "reads", None, orphan, mrn, "mrn", mrn))
        elif kind == "unknown_level":
            row = originals[read_pick[2]]
            row[rcol["level"]] = "L7"
            planted.append(Planted(kind, "reads", None, row, row[0], "level", "L7"))
    return planted


def _screenshot(cohort: Cohort, p: Patient, seed: int) -> tuple[str, Dataset]:
    """A 'screen save' secondary capture of the CT study with the name and MRN burned in."""
    profile = cohort.profile
    study = p.studies["CT"]
    rows, cols = 128, 256
    ds = Dataset()
    ds.SpecificCharacterSet = profile.charset
    ds.SOPClassUID = SOP_SC
    ds.SOPInstanceUID = f"{profile.uid_root}.{seed}.3.{p.index + 1}.2.999.1"
    ds.file_meta = file_meta(profile, SOP_SC, ds.SOPInstanceUID)
    ds.StudyInstanceUID = f"{profile.uid_root}.{seed}.1.{p.index + 1}.2"
    ds.SeriesInstanceUID = f"{profile.uid_root}.{seed}.2.{p.index + 1}.2.999"
    ds.PatientName = p.name.pn
    ds.PatientID = p.mrn
    ds.PatientBirthDate = f"{p.birth_date:%Y%m%d}"
    ds.PatientSex = p.sex
    ds.AccessionNumber = study.accession
    ds.StudyDate = ds.ContentDate = f"{study.date:%Y%m%d}"
    ds.StudyTime = ds.ContentTime = study.time
    ds.StudyID = study.study_id
    ds.ReferringPhysicianName = study.referring.pn
    ds.InstitutionName = profile.institution
    ds.Manufacturer = "ACME"
    ds.ManufacturerModelName = "PACS Viewer"
    ds.StationName = f"RADWS{profile.number:02d}"
    ds.BodyPartExamined = "SPINE"
    ds.PatientOrientation = ""
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SeriesNumber = 999
    ds.InstanceNumber = 1
    ds.SeriesDescription = "Screen Save"
    ds.BurnedInAnnotation = "YES"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    block = ds.private_block(profile.private_group, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", p.mrn)
    rng = np.random.default_rng([seed, profile.number, p.index, 999])
    ds.PixelData = screenshot(rows, cols, screenshot_lines(p), rng)
    folder = f"{p.name.ascii_upper}_{p.mrn}/{study.date:%Y%m%d}_{study.accession}/999_Screen_Save"
    return folder, ds


def screenshot_lines(p: Patient) -> list[str]:
    """The text a viewer overlays: name, MRN, exam date (what the screenshot shows)."""
    return [" ".join(p.name.words), f"MRN {p.mrn}", f"{p.studies['CT'].date:%Y-%m-%d}"]


def plant_files(
    cohort: Cohort, kinds: list[str], seed: int, dicom_dir: Path, files: list[str]
) -> list[Planted]:
    """Apply the file defects of ``kinds`` under ``dicom_dir`` (``files`` are relative, sorted)."""
    rng = np.random.default_rng([seed, cohort.profile.number, 98])
    patients = cohort.patients
    chosen = [patients[int(i)] for i in rng.choice(len(patients), size=min(3, len(patients)), replace=False)]
    picks = [chosen[k % len(chosen)] for k in range(3)]
    planted: list[Planted] = []
    for kind in kinds:
        if kind == "truncated_dicom":
            p = picks[0]
            own = [f for f in files if f.startswith(f"{p.name.ascii_upper}_{p.mrn}/")]
            target = own[int(rng.integers(len(own)))]
            path = dicom_dir / target
            data = path.read_bytes()
            path.write_bytes(data[: len(data) * 3 // 5])
            planted.append(Planted(kind, None, target, None, p.mrn, None, None))
        elif kind == "non_dicom_file":
            p = picks[1]
            study = p.studies["XR"]
            target = f"{p.name.ascii_upper}_{p.mrn}/{study.date:%Y%m%d}_{study.accession}/Thumbs.db"
            # an OLE compound-file signature followed by padding, as Windows Explorer leaves behind
            (dicom_dir / target).write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504))
            planted.append(Planted(kind, None, target, None, p.mrn, None, None))
        elif kind == "burned_in_screenshot":
            p = picks[2]
            folder, ds = _screenshot(cohort, p, seed)
            (dicom_dir / folder).mkdir(parents=True, exist_ok=True)
            target = f"{folder}/IM0001.dcm"
            ds.save_as(dicom_dir / target, enforce_file_format=True)
            planted.append(Planted(kind, None, target, None, p.mrn, None, None))
    return planted


def truth_entries(
    cohort: Cohort, planted: list[Planted], clinical: list[Row], reads: list[Row], drop_rel: str
) -> list[dict[str, Any]]:
    """Truth-file entries (data contract section 1): 1-based data rows, paths relative to OUT_DIR."""
    entries: list[dict[str, Any]] = []
    for d in planted:
        stage, reason = _stage_reason(d.kind)
        entry: dict[str, Any] = {
            "site_id": cohort.profile.site_id,
            "night": cohort.night.isoformat(),
            "kind": d.kind,
        }
        if d.table is not None:
            rows = clinical if d.table == "clinical" else reads
            entry["table"] = d.table
            entry["row"] = next(i for i, r in enumerate(rows, start=1) if r is d.row_obj)
        else:
            entry["file"] = f"{drop_rel}/dicom/{d.file}"
            entry["row"] = None
        if d.kind == "duplicate_read":
            first = next(i for i, r in enumerate(reads, start=1) if r == d.row_obj)
            reason = f"{reason}: same as reads row {first}"
        entry.update({"mrn": d.mrn, "column": d.column, "value": d.value, "stage": stage, "reason": reason})
        entries.append(entry)
    return entries
