"""Encode a cleaned header fast: raw elements are copied, only replaced elements are encoded.

pydicom's ``dcmwrite`` spends most of a de-identification's time re-encoding elements that did not
change (about 0.1 ms each). After cleaning, most elements are still pydicom ``RawDataElement``
objects holding the input's value bytes, and the cleaner stores its replacements as raw elements
too (:func:`raw_text`), so the header is the concatenation of element headers (PS3.5 7.1) and
those bytes; only elements pydicom has converted (sequences, added markers) go through pydicom's
own ``write_data_element``. Sequences and items are written with undefined length (PS3.5 7.5), which
needs no length bookkeeping and every reader supports. The file meta group (always explicit VR
little endian, PS3.10 7.1) is built the same way.
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag

from cohortpool.deid.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_UNDEFINED = 0xFFFFFFFF
_ZERO_WIDTH = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "AT": 4, "FD": 8, "SV": 8, "UV": 8}


def raw_text(tag: int, vr: str, value: str | list[str] | None) -> RawDataElement:
    """A replacement string element as raw bytes (cleaner values are ASCII, valid in any charset)."""
    data = text_bytes(vr, value)
    return RawDataElement(BaseTag(tag), vr, len(data), data, 0, False, True)


def text_bytes(vr: str, value: str | list[str] | None) -> bytes:
    """The value bytes of :func:`raw_text` (padded to even length: NUL for UI, space otherwise)."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    else:
        text = "\\".join(value)
    data = text.encode("ascii")
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return data


def raw_zero(tag: int, vr: str) -> RawDataElement:
    """A zero value of a binary VR (a dummy that identifies nothing)."""
    data = zero_bytes(vr)
    return RawDataElement(BaseTag(tag), vr, len(data), data, 0, False, True)


def zero_bytes(vr: str) -> bytes:
    """The value bytes of :func:`raw_zero`."""
    return b"\x00" * _ZERO_WIDTH.get(vr, 0)


class Encoder:
    """Encodes datasets in one transfer syntax's byte order and VR mode."""

    def __init__(self, implicit: bool, little: bool) -> None:
        self.implicit = implicit
        self.little = little
        order = "<" if little else ">"
        self._tag_len = struct.Struct(order + "HHL")
        self._short = struct.Struct(order + "HH2sH")
        self._long = struct.Struct(order + "HH2s2xL")
        self._item = self._tag_len.pack(0xFFFE, 0xE000, _UNDEFINED)
        self._item_end = self._tag_len.pack(0xFFFE, 0xE00D, 0)
        self._seq_end = self._tag_len.pack(0xFFFE, 0xE0DD, 0)

    def _header(self, tag: int, vr: str | None, length: int) -> bytes:
        if self.implicit:
            return self._tag_len.pack(tag >> 16, tag & 0xFFFF, length)
        code = (vr or "UN").encode("ascii")
        if vr in LONG_VRS or vr is None:
            return self._long.pack(tag >> 16, tag & 0xFFFF, code, length)
        return self._short.pack(tag >> 16, tag & 0xFFFF, code, length)

    def dataset(
        self, ds: Dataset, out: bytearray, encodings: Any = None, original: dict[int, Any] | None = None
    ) -> None:
        """Append the encoding of ``ds`` (tag order) to ``out``.

        ``original`` maps tags to the elements as read (before anyone converted them): a non-sequence
        element pydicom has converted since (reading a value converts in place) but that was not
        replaced is written from its original raw bytes. The cleaner never edits a value in place
        (it replaces elements, as raw elements), which is what makes this safe.
        """
        charset = getattr(ds, "_character_set", None) or encodings
        # pydicom's element store, sorted by plain int keys: BaseTag's comparisons and get_item's
        # key conversion are Python-level and cost more than the copying itself
        for key, stored in sorted(ds._dict.items(), key=_tag_order):
            tag, elem = int(key), stored
            if isinstance(elem, RawDataElement) and elem.value is None:
                elem = ds.get_item(tag)  # a deferred read: let pydicom load it
            if original is not None and isinstance(elem, DataElement) and elem.VR != "SQ":
                before = original.get(tag)
                if isinstance(before, RawDataElement):
                    elem = before
            if isinstance(elem, RawDataElement) and elem.length != _UNDEFINED and elem.value is not None:
                value = elem.value
                if elem.VR is None and not self.implicit:
                    out += self._pydicom(ds[tag], charset)  # implicit source, explicit target
                    continue
                out += self._header(tag, elem.VR, len(value))
                out += value
            elif isinstance(elem, DataElement) and elem.VR == "SQ":
                out += self._header(tag, "SQ", _UNDEFINED)
                for item in elem.value:
                    out += self._item
                    self.dataset(item, out, charset)
                    out += self._item_end
                out += self._seq_end
            else:
                out += self._pydicom(ds[tag], charset)

    def _pydicom(self, elem: DataElement, charset: Any) -> bytes:
        buffer = DicomBytesIO()
        buffer.is_implicit_VR = self.implicit
        buffer.is_little_endian = self.little
        write_data_element(buffer, elem, charset)
        return bytes(buffer.getvalue())


def _tag_order(item: tuple[Any, Any]) -> int:
    return int(item[0])


#: the file meta group's encoding (PS3.10 7.1), built once per process
_META = Encoder(False, True)


def _meta_element(tag: int, vr: str, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00" if vr in ("UI", "OB") else b" "
    head = _META._header(tag, vr, len(value))
    return head + value


def encode_meta(sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """Preamble, ``DICM`` and a fresh file meta group (nothing of the input's meta is copied).

    Source/sending/receiving AE titles and private information (0002,0016-0102) can name the
    hospital, so they are not carried over; the implementation UID and version are cohortpool's.
    """
    body = b"".join(
        (
            _meta_element(0x00020001, "OB", b"\x00\x01"),
            _meta_element(0x00020002, "UI", sop_class.encode("ascii")),
            _meta_element(0x00020003, "UI", sop_instance.encode("ascii")),
            _meta_element(0x00020010, "UI", transfer_syntax.encode("ascii")),
            _meta_element(0x00020012, "UI", IMPLEMENTATION_CLASS_UID.encode("ascii")),
            _meta_element(0x00020013, "SH", IMPLEMENTATION_VERSION_NAME.encode("ascii")),
        )
    )
    length = _meta_element(0x00020000, "UL", struct.pack("<L", len(body)))
    return b"\x00" * 128 + b"DICM" + length + body


def encode_dataset(
    ds: Dataset, implicit: bool, little: bool, original: dict[int, Any] | None = None
) -> bytes:
    """The dataset's elements in the given encoding (see :meth:`Encoder.dataset` for ``original``)."""
    out = bytearray()
    Encoder(implicit, little).dataset(ds, out, original=original)
    return bytes(out)


def snapshot(ds: Dataset) -> dict[int, Any]:
    """The top-level elements as read, before any value is looked at (pass to :func:`encode_dataset`)."""
    return {int(tag): elem for tag, elem in ds._dict.items()}  # pydicom's store; keeps the raw elements
