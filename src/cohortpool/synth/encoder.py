"""Encode a series' instances fast: pydicom encodes the shared elements once, then only what changes.

A series' instances share almost every element; only a handful differ (SOP Instance UID, instance number,
position, references, pixels). ``pydicom.dcmwrite`` re-encodes ~100 elements per file, which made the
demo consortium too slow to write. Here pydicom still encodes every element (nothing is hand-encoded):
the patient and study elements are encoded once per study, the series elements once per series, the
varying elements per instance, and the byte strings are joined in tag order, which is exactly how a
DICOM data set is serialised (PS3.5 section 7.1). ``tests/unit/test_synth_encoder.py`` proves the
result equals ``dcmwrite``'s.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.tag import Tag

PREAMBLE = bytes(128) + b"DICM"
_MEDIA_SOP_INSTANCE = 0x00020003


def _buffer(implicit: bool) -> DicomBytesIO:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    return fp


def encode_elements(ds: Dataset, implicit: bool, charset: str | list[str]) -> dict[int, bytes]:
    """Each element of ``ds`` encoded on its own (pydicom's element writer), keyed by tag."""
    return {int(elem.tag): _encode_one(elem, implicit, charset) for elem in ds}


def _encode_one(elem: DataElement, implicit: bool, charset: str | list[str]) -> bytes:
    fp = _buffer(implicit)
    write_data_element(fp, elem, charset)
    return bytes(fp.getvalue())


class SeriesEncoder:
    """Serialises instances of one series that differ only in ``varying`` tags and their SOP Instance UID.

    Parameters
    ----------
    encoded
        The shared elements, already encoded (:func:`encode_elements`), keyed by tag.
    varying
        Tags set per instance (none of them may be shared).
    implicit
        Implicit VR Little Endian instead of Explicit VR Little Endian.
    charset
        The data set's Specific Character Set (for text in the varying elements).
    file_meta
        The File Meta Information without *Media Storage SOP Instance UID* (set per instance).
    """

    def __init__(
        self,
        encoded: dict[int, bytes],
        varying: Sequence[int],
        implicit: bool,
        charset: str | list[str],
        file_meta: FileMetaDataset,
    ) -> None:
        self.implicit = implicit
        self.charset = charset
        self.bounds = sorted(int(Tag(t)) for t in varying)
        chunks: list[list[bytes]] = [[] for _ in range(len(self.bounds) + 1)]
        for tag in sorted(encoded):
            if tag in self.bounds:
                raise ValueError(f"{Tag(tag)} is both shared and varying")
            chunks[bisect_left(self.bounds, tag)].append(encoded[tag])
        self.parts = [b"".join(chunk) for chunk in chunks]
        # File Meta is always Explicit VR Little Endian (PS3.10 section 7.1); its group length covers
        # the elements after it, so it is the one element computed per instance
        meta = {int(e.tag): _encode_one(e, False, "ISO_IR 6") for e in file_meta if e.tag != 0x00020000}
        self.meta_before = b"".join(v for k, v in sorted(meta.items()) if k < _MEDIA_SOP_INSTANCE)
        self.meta_after = b"".join(v for k, v in sorted(meta.items()) if k > _MEDIA_SOP_INSTANCE)

    def encode(self, sop_instance_uid: str, elements: dict[int, DataElement | bytes]) -> bytes:
        """The whole file (preamble, File Meta, data set) of one instance.

        ``elements`` holds the varying elements, as data elements or already encoded.
        """
        uid = _encode_one(DataElement(_MEDIA_SOP_INSTANCE, "UI", sop_instance_uid), False, "ISO_IR 6")
        body = self.meta_before + uid + self.meta_after
        length = _encode_one(DataElement(0x00020000, "UL", len(body)), False, "ISO_IR 6")
        out = [PREAMBLE, length, body, self.parts[0]]
        for k, tag in enumerate(self.bounds):
            elem = elements.get(tag)
            if isinstance(elem, bytes):
                out.append(elem)
            elif elem is not None:
                out.append(_encode_one(elem, self.implicit, self.charset))
            out.append(self.parts[k + 1])
        return b"".join(out)
