"""Read only the header of a DICOM file and stream its pixel data through untouched.

pydicom parses the header and stops at the pixel data element (``stop_before_pixels``, which
leaves the file positioned at the start of (7FE0,0010)); the pixel data element itself is walked
here by its length, or item by item when encapsulated, so the output can be the cleaned header
followed by the input's raw pixel bytes, never decoded. pydicom has no API that returns the extent
of a raw element without reading its value, which is why this small walker is hand-written
(PS3.5 7.1 element encodings, A.4 encapsulation). Elements after the pixel data (digital
signatures, trailing padding, private groups) are parsed and cleaned like the header.

Deflated transfer syntaxes compress the whole dataset, so those files are read and written whole
(pydicom inflates and deflates; the pixel values are still never decoded).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset, read_preamble
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)

from cohortpool.deid.encode import encode_dataset, encode_meta, snapshot
from cohortpool.deid.truncation import REMEDY, cut_short
from cohortpool.deid.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_ITEM = 0xFFFEE000
_SEQ_DELIM = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_DEFLATED = {DeflatedExplicitVRLittleEndian, "1.2.840.10008.1.2.8.1"}  # incl. JPIP deflate
_NATIVE_TS = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}
#: a deflated data set may not inflate past this (real deflated instances are far smaller)
MAX_INFLATED_BYTES = 512 << 20
#: Directory Record Sequence (0004,1220): what makes a file a DICOMDIR whatever its meta says
_DIRECTORY_RECORDS = 0x00041220
_ENCAPSULATED_DOCUMENT = 0x00420011
_TRUNCATION_HINTS = ("end of file", "eof", "delimiter", "truncated", "ran out")


class UnreadableError(Exception):
    """The file is not DICOM, is truncated or cannot be parsed; ``str(exc)`` is the reason."""


@dataclass
class Header:
    """A parsed header and where the raw remainder of the file is."""

    ds: Dataset
    implicit: bool
    little: bool
    transfer_syntax: str
    #: byte range of the pixel data element in the input (start == end: none)
    pixel_start: int
    pixel_end: int
    #: elements after the pixel data, parsed (``None``: nothing follows)
    tail: Dataset | None
    #: the whole dataset was read (deflated): write it whole, no raw copy
    whole: bool
    #: the top-level elements as read, before any value was converted (see encode.snapshot)
    original: dict[int, Any] | None = None


def _looks_like_dicom(data: memoryview) -> bool:
    if len(data) >= 132 and bytes(data[128:132]) == b"DICM":
        return True
    if len(data) < 8:
        return False
    # no preamble: the stream must begin with a file meta (0002) or identifying (0008) group element
    little, big = struct.unpack_from("<H", data, 0)[0], struct.unpack_from(">H", data, 0)[0]
    return little in (0x0002, 0x0008) or big == 0x0008


def _element_end(data: memoryview, pos: int, implicit: bool, little: bool) -> int:
    """End offset of the element starting at ``pos`` (its whole value, items included)."""
    end_char = "<" if little else ">"
    size = len(data)
    if pos + 8 > size:
        raise UnreadableError(f"truncated: the file ends inside the pixel data element header: {REMEDY}")
    if implicit:
        length: int = struct.unpack_from(end_char + "L", data, pos + 4)[0]
        start = pos + 8
    else:
        vr = bytes(data[pos + 4 : pos + 6])
        if vr in _LONG_VRS:
            if pos + 12 > size:
                raise UnreadableError(
                    f"truncated: the file ends inside the pixel data element header: {REMEDY}"
                )
            length = struct.unpack_from(end_char + "L", data, pos + 8)[0]
            start = pos + 12
        else:
            length = struct.unpack_from(end_char + "H", data, pos + 6)[0]
            start = pos + 8
    if length != _UNDEFINED:
        if start + length > size:
            raise UnreadableError(
                f"truncated: pixel data declares {length} bytes but only {size - start} remain: {REMEDY}"
            )
        return start + length
    # encapsulated: items until the sequence delimiter (PS3.5 A.4)
    cursor = start
    while True:
        if cursor + 8 > size:
            raise UnreadableError(f"truncated: encapsulated pixel data has no sequence delimiter: {REMEDY}")
        group, elem, item_length = struct.unpack_from(end_char + "HHL", data, cursor)
        tag = group << 16 | elem
        if tag == _SEQ_DELIM:
            return int(cursor + 8)
        if tag != _ITEM or item_length == _UNDEFINED:
            raise UnreadableError(
                f"corrupt encapsulated pixel data: unexpected tag {tag:08X} at byte {cursor}"
            )
        cursor += 8 + item_length
        if cursor > size:
            raise UnreadableError(
                f"truncated: an encapsulated pixel data fragment runs past the end of file: {REMEDY}"
            )


def _read(fp: io.BufferedIOBase | io.BytesIO, stop: bool) -> Dataset:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = dcmread(fp, stop_before_pixels=stop, force=True)
        except Exception as exc:  # pydicom raises many types on bad input; all mean "cannot parse"
            raise UnreadableError(f"cannot parse DICOM: {type(exc).__name__}: {exc}") from exc
    for warning in caught:
        text = str(warning.message).lower()
        if any(hint in text for hint in _TRUNCATION_HINTS):
            raise UnreadableError(f"truncated or corrupt: {str(warning.message).splitlines()[0]}")
    return ds


def _check_complete(ds: Dataset, data: memoryview) -> None:
    """Say why a file without pixel data is held back: cut short, a DICOMDIR, a presentation state, or
    an instance that holds no image (a report, a plan, a header-only image).

    A file with an element (file meta included, at any depth) whose header or value runs past its end
    was cut short (:func:`cohortpool.deid.truncation.cut_short`; pydicom keeps or drops such an element
    without a word). Otherwise the file is complete as far as anyone can tell: a transfer cut exactly
    before the pixel data would look the same, which the reason says for image classes.
    """
    size = len(data)
    cut = cut_short(data)
    if cut is not None:
        raise UnreadableError(cut)
    if len(ds):
        last = ds.get_item(max(ds.keys()))
        if isinstance(last, RawDataElement) and last.length != _UNDEFINED:
            end = last.value_tell + last.length
            if end > size:
                raise UnreadableError(
                    f"truncated: element {last.tag} runs past the end of the file: {REMEDY}"
                )
            if 0 < size - end < 12:  # fewer bytes than an element header: a header cut short
                raise UnreadableError(
                    f"truncated: the file ends inside the element after {last.tag}: {REMEDY}"
                )
    if _ENCAPSULATED_DOCUMENT in ds:
        return  # a document's payload is in its header (the burned-in policy decides about it)
    meta_class = ds.file_meta.get("MediaStorageSOPClassUID", "") if hasattr(ds, "file_meta") else ""
    sop_class = UID(str(ds.get("SOPClassUID", "") or meta_class or "").strip())
    if sop_class == MediaStorageDirectoryStorage or _DIRECTORY_RECORDS in ds:
        raise UnreadableError(
            "DICOMDIR: a media directory (records naming patients, studies and files), "
            "not an instance: not sent"
        )
    name = sop_class.name if sop_class.is_valid and sop_class.name != sop_class else ""
    if "Presentation State" in name:
        raise UnreadableError(f"presentation state: {name} ({sop_class}) annotates other instances: not sent")
    if "Image Storage" in name or "Rows" in ds:
        raise UnreadableError(
            f"no pixel data: {name or 'image'} instance ends without Pixel Data (7FE0,0010): a header "
            "only (or a transfer cut exactly there): not sent"
        )
    what = f"{name} ({sop_class})" if name else (f"SOP class {sop_class}" if sop_class else "the instance")
    raise UnreadableError(f"no pixel data: {what} holds no image: not sent")


def _check_inflated_size(fp: io.BufferedIOBase | io.BytesIO, data: memoryview) -> None:
    """Refuse a deflated data set that inflates past :data:`MAX_INFLATED_BYTES` (a decompression bomb).

    pydicom inflates a deflated file whole, in memory, before parsing anything; deflate reaches about
    1:1000, so a 1 MB file could ask for a gigabyte per worker. The stream is inflated here first in
    bounded steps, counting and discarding, so memory stays at one step whatever the file claims.
    """
    if not any(uid.encode() in bytes(data[:1024]) for uid in _DEFLATED):
        return
    try:
        fp.seek(0)
        stream = cast(BinaryIO, fp)
        read_preamble(stream, True)
        meta = read_dataset(stream, False, True, stop_when=lambda tag, vr, length: tag.group != 2)
    except Exception:
        fp.seek(0)
        return  # no readable file meta: pydicom will not take it as deflated either
    start = fp.tell()
    fp.seek(0)
    if str(meta.get("TransferSyntaxUID", "") or "") not in _DEFLATED:
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total, offset, step = 0, start, 1 << 20
    while not inflater.eof:
        chunk = inflater.unconsumed_tail
        if not chunk:
            if offset >= len(data):
                return  # the stream ends early: pydicom reports the file as truncated
            chunk = bytes(data[offset : offset + step])
            offset += len(chunk)
        try:
            total += len(inflater.decompress(chunk, step))
        except zlib.error as exc:
            raise UnreadableError(f"corrupt deflated data set: {exc}") from exc
        if total > MAX_INFLATED_BYTES:
            raise UnreadableError(
                f"deflated data set expands beyond {MAX_INFLATED_BYTES >> 20} MiB from "
                f"{len(data) - start} bytes (decompression bomb?): not inflated"
            )


def read_header(fp: io.BufferedIOBase | io.BytesIO, data: memoryview) -> Header:
    """Parse the header of the file open as ``fp`` whose bytes are ``data`` (an mmap view).

    Raises
    ------
    UnreadableError
        Not DICOM, truncated or unparseable, with the reason.
    """
    if not _looks_like_dicom(data):
        raise UnreadableError("not DICOM: no DICM prefix and no DICOM element at the start of the file")
    _check_inflated_size(fp, data)
    try:
        ds = _read(fp, stop=True)
    except UnreadableError as exc:
        cut = cut_short(data)  # pydicom's words for a file cut short vary (a struct error, a length)
        if cut is not None:
            raise UnreadableError(cut) from exc
        raise
    original = snapshot(ds)
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        raise UnreadableError("cannot parse DICOM: no data elements found")
    meta_ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    if meta_ts in _DEFLATED:
        fp.seek(0)
        whole = _read(fp, stop=False)
        return Header(whole, False, True, meta_ts, 0, 0, None, whole=True)
    native = _NATIVE_TS[(bool(implicit), bool(little))]
    # keep an encapsulated (compressed) syntax when the encoding agrees with it; otherwise the
    # header must declare the encoding the bytes really use, or the copied pixel data misreads
    ts = meta_ts if meta_ts and (implicit, little) == (False, True) else native
    pos = fp.tell()
    size = len(data)
    if pos >= size:
        _check_complete(ds, data)
        return Header(ds, bool(implicit), bool(little), ts, pos, pos, None, False, original)
    end = _element_end(data, pos, bool(implicit), bool(little))
    tail = None
    if end < size and any(data[end:]):
        try:
            tail = read_dataset(io.BytesIO(bytes(data[end:])), bool(implicit), bool(little))
        except Exception as exc:  # anything pydicom cannot read after the pixels is unsafe to pass
            raise UnreadableError(f"unparseable data after the pixel data: {type(exc).__name__}") from exc
    return Header(ds, bool(implicit), bool(little), ts, pos, end, tail, False, original)


def encode_header(header: Header) -> bytes:
    """Preamble, a fresh file meta group and the cleaned dataset up to the pixel data.

    Deflated files are written whole by pydicom (it deflates); everything else by
    :mod:`cohortpool.deid.encode`, which copies unchanged elements' bytes.
    """
    ds = header.ds
    sop_class, sop_instance = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
    if header.whole:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
        ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_instance)
        ds.file_meta.TransferSyntaxUID = UID(header.transfer_syntax)
        ds.file_meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
        ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        ds.preamble = b"\x00" * 128
        buffer = DicomBytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
        return bytes(buffer.getvalue())
    meta = encode_meta(sop_class, sop_instance, header.transfer_syntax)
    return meta + encode_dataset(ds, header.implicit, header.little, header.original)


def encode_tail(tail: Dataset, implicit: bool, little: bool) -> bytes:
    """The cleaned elements that followed the pixel data, in the file's encoding."""
    return encode_dataset(tail, implicit, little) if len(tail) else b""
