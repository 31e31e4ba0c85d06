"""A file cut short inside a value (of the file meta group, of the data set, inside a sequence) is
quarantined as ``truncated``, naming the element and its offset and saying what to do, never as an
instance without pixel data (pydicom keeps or drops such an element without a word).
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import data_element_generator
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from cohortpool.deid import deidentify_tree
from cohortpool.deid.stream import UnreadableError, read_header
from cohortpool.deid.truncation import REMEDY, cut_short

SECRET = b"b5c7f931cd15290b9f3cf1ac48694910d138eb3cee8b65f5ab52cf7315d4899d"
NIGHT = "2024-05-06"
CT = "1.2.840.10008.5.1.4.1.1.2"
ROOT = "1.2.826.0.1.3680043.9.8888."


def _ct(ts: str = ExplicitVRLittleEndian, undefined: bool = True) -> bytes:
    """A CT image whose header runs past 1,100 bytes, with nested sequences before the pixel data."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = f"{ROOT}3.1"
    ds.file_meta.TransferSyntaxUID = ts
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = f"{ROOT}3.1"
    ds.StudyInstanceUID = f"{ROOT}1"
    ds.SeriesInstanceUID = f"{ROOT}2"
    ds.FrameOfReferenceUID = f"{ROOT}4"
    ds.PatientName = "MOORE^JOAN"
    ds.PatientID = "MRN0001"
    ds.AccessionNumber = "ACC0001"
    ds.StudyDate = "20240301"
    ds.StudyTime = "101010"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ds.ManufacturerModelName = "SCANNER 9"
    ds.InstitutionName = "GENERAL HOSPITAL OF SOMEWHERE"
    ds.InstitutionAddress = "1 HOSPITAL ROAD, SOMEWHERE, SOMECOUNTRY"
    ds.ReferringPhysicianName = "WHO^DOCTOR^MD"
    ds.StudyDescription = "CT SPINE WITHOUT CONTRAST"
    ds.SeriesDescription = "AXIAL BONE 1.0 MM"
    ds.BodyPartExamined = "SPINE"
    code = Dataset()
    code.CodeValue = "T-11503"
    code.CodingSchemeDesignator = "SRT"
    code.CodeMeaning = "Vertebral column"
    modifier = Dataset()
    modifier.CodeValue = "G-A100"
    modifier.CodingSchemeDesignator = "SRT"
    modifier.CodeMeaning = "Right"
    code.ModifierCodeSequence = Sequence([modifier])
    ds.AnatomicRegionSequence = Sequence([code])
    ds["AnatomicRegionSequence"].is_undefined_length = undefined
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    ds.ImagePositionPatient = ["-125.0", "-125.0", "-300.5"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = ["0.488281", "0.488281"]
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = b"\x01\x00" * 16
    buffer = io.BytesIO()
    ds.save_as(
        buffer,
        implicit_vr=ts == ImplicitVRLittleEndian,
        little_endian=ts != ExplicitVRBigEndian,
        enforce_file_format=True,
    )
    return buffer.getvalue()


GOOD = _ct()
PIXELS = GOOD.rindex(b"\xe0\x7f\x10\x00OW")


def _boundaries(data: bytes, ts: str) -> set[int]:
    """Offsets where a top-level element of the data set begins (a cut there leaves whole elements)."""
    implicit, little = ts == ImplicitVRLittleEndian, ts != ExplicitVRBigEndian
    fp = io.BytesIO(data)
    fp.seek(144 + struct.unpack_from("<L", data, 140)[0])  # past the file meta group
    starts = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for elem in data_element_generator(fp, implicit, little):
            if not hasattr(elem, "value_tell"):
                continue  # a sequence, parsed: its neighbours' ends and starts bound it
            long = not implicit and elem.VR in ("OB", "OW", "SQ", "UN", "UT", "UC", "UR")
            starts.add(elem.value_tell - (12 if long else 8))
            if elem.length != 0xFFFFFFFF:
                starts.add(elem.value_tell + elem.length)
    return starts


def _reason(data: bytes) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_header(io.BytesIO(data), memoryview(data))
    except UnreadableError as exc:
        return str(exc)
    return "read"


def test_the_probe_offsets_are_inside_values_and_past_the_file_meta() -> None:
    assert PIXELS > 1100
    meta_end = 144 + struct.unpack_from("<L", GOOD, 140)[0]
    assert 150 < meta_end < 600
    assert not {200, 600, 900, 1100} & _boundaries(GOOD, ExplicitVRLittleEndian)


@pytest.mark.parametrize("cut", [150, 200, 600, 900, 1100])
def test_a_file_cut_inside_a_value_is_quarantined_as_truncated(tmp_path: Path, cut: int) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "cut.dcm").write_bytes(GOOD[:cut])
    result = deidentify_tree(drop, tmp_path / "out", tmp_path / "vault", "site01", SECRET, NIGHT)
    (row,) = result.rows
    assert row.outcome == "quarantined"
    assert row.reason.startswith("truncated: "), row.reason
    assert REMEDY in row.reason
    # the element by its tag, or the element whose header was cut by its offset
    assert re.search(r"\([0-9A-F]{4},[0-9A-F]{4}\)|at byte \d+", row.reason), row.reason
    assert "MOORE" not in row.reason and "MRN0001" not in row.reason


@pytest.mark.parametrize(
    ("ts", "undefined"),
    [
        (ExplicitVRLittleEndian, True),
        (ExplicitVRLittleEndian, False),
        (ImplicitVRLittleEndian, True),
        (ExplicitVRBigEndian, False),
    ],
    ids=["explicit-undefined-sq", "explicit-defined-sq", "implicit", "big-endian"],
)
def test_every_cut_before_the_pixel_data_but_at_an_element_boundary_says_truncated(
    ts: str, undefined: bool
) -> None:
    data = _ct(ts, undefined)
    tag = b"\x7f\xe0\x00\x10" if ts == ExplicitVRBigEndian else b"\xe0\x7f\x10\x00"
    pixels = data.rindex(tag)
    boundaries = _boundaries(data, ts)
    wrong = {}
    for cut in range(132, pixels + 12):
        if cut in boundaries:
            continue  # whole elements and nothing after: a header-only file looks the same
        reason = _reason(data[:cut])
        if not reason.startswith("truncated"):
            wrong[cut] = reason
    assert wrong == {}


def test_a_whole_file_is_not_cut_short() -> None:
    assert cut_short(GOOD) is None
    assert cut_short(GOOD[:PIXELS]) is None  # whole elements up to the pixel data
