"""Small valid DICOM studies for the ingest tests, built with pydicom (no real data, no network).

Importable from every test file because the root ``tests/conftest.py`` puts ``tests/`` on ``sys.path``
(pytest's default ``prepend`` import mode, no ``__init__.py``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from cohortpool.contract.quiet import pydicom_quiet

SOP_CLASS = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "DX": DigitalXRayImageStorageForPresentation,
    "CR": ComputedRadiographyImageStorage,
    "OT": SecondaryCaptureImageStorage,  # secondary capture
}


def make_instance(
    *,
    study_uid: str,
    series_uid: str,
    modality: str,
    number: int,
    patient: str = "DOE^JANE",
    mrn: str = "MRN0001",
    study_date: str = "20240105",
    implicit: bool = False,
    size: int = 16,
) -> Dataset:
    """One image with plausible headers (planted PHI included, as a real export has)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SOP_CLASS[modality]
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.SOPClassUID = SOP_CLASS[modality]
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = patient
    ds.PatientID = mrn
    ds.PatientBirthDate = "19500101"
    ds.PatientSex = "F"
    ds.StudyDate = study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = f"ACC{number:05d}"
    ds.StudyID = "1"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.ConversionType = "WSD" if modality == "OT" else None
    if ds.ConversionType is None:
        del ds.ConversionType
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    pixels = (np.arange(size * size, dtype=np.uint16).reshape(size, size) * (number + 1)) % 4096
    # bytes that look like multipart boundaries and CRLFs must survive every transfer unchanged
    pixels.flat[:8] = [0x0A0D, 0x2D2D, 0x0D0A, 0x0A0D, 0x2D2D, 0x0D2D, 0x0A2D, 0x0D0D]
    ds.PixelData = pixels.tobytes()
    return ds


def write_study(
    folder: Path, modality: str, n_instances: int, *, study_date: str | None = None, tag: str = "s"
) -> tuple[str, list[Path]]:
    """Write one study of ``n_instances`` images into ``folder``; return its UID and the files."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid = generate_uid(), generate_uid()
    date = study_date or dt.date(2024, 1, 5).strftime("%Y%m%d")
    files = []
    for i in range(n_instances):
        ds = make_instance(
            study_uid=study_uid, series_uid=series_uid, modality=modality, number=i + 1, study_date=date
        )
        path = folder / f"{tag}_{modality}_{i:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return study_uid, files


#: what a hostile (or broken) export put in a SOPInstanceUID: the patient's name and record number
#: (those of :func:`make_instance`, so the instance joins the same patient and study at the PACS)
HOSTILE_UID = "1.2.840.DOE^JANE.MRN0001"
#: the parts of HOSTILE_UID that must never reach a message, a log or a file name
HOSTILE_PHI = ("DOE", "JANE", "MRN0001")


def write_hostile_instance(
    path: Path, study_uid: str, series_uid: str, *, sop_uid: str = HOSTILE_UID, study_date: str = "20240105"
) -> Path:
    """Write one CT image of a study whose SOPInstanceUID is ``sop_uid`` (invalid by default, holding PHI)."""
    ds = make_instance(
        study_uid=study_uid, series_uid=series_uid, modality="CT", number=99, study_date=study_date
    )
    with pydicom_quiet():  # pydicom warns and logs, quoting the value, when it is set and written
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
    return path


def dataset_equal(a: Path, b: Path) -> bool:
    """True if two files hold the same data set (every element, pixels included)."""
    da, db = pydicom.dcmread(a), pydicom.dcmread(b)
    return bool(da == db) and da.file_meta.TransferSyntaxUID == db.file_meta.TransferSyntaxUID


def write_large_instance(path: Path, megabytes: int, *, frame: int = 512) -> str:
    """Write a multi-frame secondary capture of about ``megabytes`` MB of pixel data; return its SOP UID.

    The header comes from pydicom; the pixel data element is appended by hand, 1 MiB at a time, so a
    1 GB instance is written in bounded memory (pydicom would hold the whole value). Frames are
    ``frame`` x ``frame`` 16-bit, of a byte pattern that varies with the frame.
    """
    frame_bytes = frame * frame * 2
    frames = max(1, megabytes * 1_000_000 // frame_bytes)
    ds = make_instance(
        study_uid=generate_uid(), series_uid=generate_uid(), modality="OT", number=1, size=frame
    )
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = (
        "1.2.840.10008.5.1.4.1.1.7.3"  # multi-frame word SC
    )
    ds.NumberOfFrames = frames
    del ds.PixelData
    ds.save_as(path, enforce_file_format=True)
    total = frames * frame_bytes
    chunk = bytes(range(256)) * (1 << 12)  # 1 MiB
    with path.open("ab") as handle:
        # (7FE0,0010) OW, explicit VR little endian: tag, VR, 2 reserved bytes, 4-byte length
        handle.write(b"\xe0\x7f\x10\x00OW\x00\x00" + total.to_bytes(4, "little"))
        left = total
        while left:
            part = chunk[: min(left, len(chunk))]
            handle.write(part)
            left -= len(part)
    return str(ds.SOPInstanceUID)
