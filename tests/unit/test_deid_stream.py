"""Header-only reading: where the pixel data ends, and what counts as unreadable."""

from __future__ import annotations

import io
import struct

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from cohortpool.deid.stream import UnreadableError, read_header


def _file(ts: str = ExplicitVRLittleEndian, pixels: bytes = b"\x01\x00" * 8, trailing: bool = False) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3"
    ds.Rows = ds.Columns = 2
    ds.PixelData = pixels
    ds["PixelData"].VR = "OB" if ts == JPEGBaseline8Bit else "OW"
    if trailing:
        ds.add_new(0xFFFCFFFC, "OB", b"PADDING!")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _header(data: bytes):
    return read_header(io.BytesIO(data), memoryview(data))


def test_native_pixel_data_range_is_the_element_and_trailing_elements_are_parsed() -> None:
    data = _file(trailing=True)
    header = _header(data)
    start = data.index(b"\xe0\x7f\x10\x00OW")
    assert header.pixel_start == start
    assert header.pixel_end == start + 12 + 16
    assert header.tail is not None and 0xFFFCFFFC in header.tail
    assert "PixelData" not in header.ds


def test_encapsulated_pixel_data_is_walked_item_by_item_to_its_delimiter() -> None:
    fragments = encapsulate([b"\xff\xd8" + b"\x00" * 30 + b"\xff\xd9"] * 3)
    data = _file(JPEGBaseline8Bit, fragments)
    header = _header(data)
    assert header.transfer_syntax == JPEGBaseline8Bit
    assert header.pixel_end == len(data)
    assert data[header.pixel_end - 8 : header.pixel_end] == struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, this is a text file", "not DICOM"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 300, "not DICOM"),
        (_file()[:-6], "truncated"),
        (_file(JPEGBaseline8Bit, encapsulate([b"\xff\xd8" + b"\x00" * 30 + b"\xff\xd9"]))[:-10], "truncated"),
        (_file()[: _file().index(b"\x28\x00\x10\x00") + 3], "truncated"),
    ],
)
def test_unreadable_inputs_raise_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableError, match=reason):
        _header(data)
