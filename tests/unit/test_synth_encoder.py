"""The series encoder writes exactly the bytes pydicom's dcmwrite writes for the same data set."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread, dcmwrite
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from cohortpool.synth.encoder import SeriesEncoder, encode_elements

CT = "1.2.840.10008.5.1.4.1.1.2"
VARYING = (0x00080018, 0x00081140, 0x00200013, 0x7FE00010)


def _shared() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "GB18030"
    ds.SOPClassUID = CT
    ds.Modality = "CT"
    ds.PatientName = "Wang^Xiaoming=王^小明"
    ds.PatientID = "ZY00001234"
    other = Dataset()
    other.PatientID = "123"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.private_block(0x0009, "ACME HOSPITAL PACS", create=True).add_new(0x01, "LO", "ZY00001234")
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = 16
    return ds


def _meta(uid: str | None, tsyntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = CT
    if uid is not None:
        meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = tsyntax
    meta.ImplementationClassUID = "1.2.3.4"
    meta.ImplementationVersionName = "TEST"
    return meta


@pytest.mark.parametrize("tsyntax", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
def test_series_encoder_matches_dcmwrite(tsyntax: str) -> None:
    implicit = tsyntax == "1.2.840.10008.1.2"
    shared = _shared()
    encoder = SeriesEncoder(
        encode_elements(shared, implicit, "GB18030"), VARYING, implicit, "GB18030", _meta(None, tsyntax)
    )
    for number, uid in ((1, "1.2.3.4.5.1"), (12, "1.2.3.4.5.12")):
        ref = Dataset()
        ref.ReferencedSOPClassUID = CT
        ref.ReferencedSOPInstanceUID = "1.2.3.4.5.0"
        pixels = bytes(range(8))
        elements = {
            0x00080018: DataElement(0x00080018, "UI", uid),
            0x00081140: DataElement(0x00081140, "SQ", Sequence([ref])),
            0x00200013: DataElement(0x00200013, "IS", number),
            0x7FE00010: DataElement(0x7FE00010, "OW", pixels),
        }
        ours = encoder.encode(uid, dict(elements))

        full = _shared()
        for elem in elements.values():
            full.add(elem)
        full.file_meta = _meta(uid, tsyntax)
        buffer = io.BytesIO()
        dcmwrite(buffer, full, enforce_file_format=True)
        assert ours == buffer.getvalue()
        back = dcmread(io.BytesIO(ours))
        assert back.InstanceNumber == number
        assert back.PatientName.ideographic == "王^小明"


def test_series_encoder_rejects_an_element_both_shared_and_varying() -> None:
    shared = _shared()
    shared.SOPInstanceUID = "1.2.3"
    with pytest.raises(ValueError, match="both shared and varying"):
        SeriesEncoder(
            encode_elements(shared, False, "GB18030"),
            VARYING,
            False,
            "GB18030",
            _meta(None, "1.2.840.10008.1.2.1"),
        )
