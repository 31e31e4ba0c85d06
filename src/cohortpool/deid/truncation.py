"""Where a file was cut short: the element whose header or value runs past the end of the file.

pydicom reads a value that runs past the end of the file as the bytes that are there (and, inside the
file meta group or a sequence, often drops the element or stops without a word), so a file cut inside
a value can look like a complete header without pixel data. :func:`cut_short` walks the element
structure over the raw bytes (PS3.10 7.1 file meta, PS3.5 7.1 element encodings, 7.5 sequences and
items) and names the first element that does not fit. It runs only where a file already failed (no
pixel data, or pydicom could not parse it), so its cost is not on the common path.
"""

from __future__ import annotations

import struct

from pydicom.datadict import dictionary_VR

_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF
_EXPLICIT_BIG_ENDIAN = b"1.2.840.10008.1.2.2"
_IMPLICIT_LITTLE_ENDIAN = b"1.2.840.10008.1.2"
_DEFLATED = (b"1.2.840.10008.1.2.1.99", b"1.2.840.10008.1.2.4.95")
#: sequences nested deeper than this are not walked (no verdict; the parser's own limits apply)
_MAX_DEPTH = 64
#: what the site can do about a file cut short
REMEDY = "re-export or re-send the file"


class _Cut(Exception):
    """The reason a walk found the end of the file inside an element."""


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def cut_short(data: bytes | memoryview) -> str | None:
    """The reason, starting ``truncated:``, when ``data`` ends inside an element; ``None`` when every
    element up to the end of the file (or up to the pixel data) is whole, or the file cannot be walked
    (deflated, nested too deep, not DICOM as far as the walk can tell)."""
    size = len(data)
    pos = 132 if size >= 132 and bytes(data[128:132]) == b"DICM" else 0
    try:
        if pos == 132 and size == 132:
            raise _Cut(
                f"truncated: the file ends after the DICM prefix, before the file meta group: {REMEDY}"
            )
        pos, syntax = _meta(data, pos)
        if syntax is not None and syntax.startswith(_DEFLATED):
            return None  # the data set is compressed whole: zlib says where it ends
        if syntax is None:  # no file meta: the first element tells the encoding (PS3.5 7.1)
            implicit = not (pos + 6 <= size and bytes(data[pos + 4 : pos + 6]).isalpha())
            little = True
        else:
            implicit = syntax == _IMPLICIT_LITTLE_ENDIAN
            little = syntax != _EXPLICIT_BIG_ENDIAN
        _items_of(data, pos, size, implicit, little, depth=0, top=True)
    except _Cut as cut:
        return str(cut)
    except (_Unwalkable, struct.error):
        return None
    return None


class _Unwalkable(Exception):
    """Not a structure this walk can judge (too deep, an undefined length it cannot follow)."""


def _meta(data: bytes | memoryview, pos: int) -> tuple[int, bytes | None]:
    """Walk the file meta group (always explicit VR little endian); its end and transfer syntax."""
    size = len(data)
    syntax = None
    seen = False
    declared_end = None
    while pos + 4 <= size:
        group = struct.unpack_from("<H", data, pos)[0]
        if group != 0x0002:
            break
        seen = True
        tag, start, length, _vr = _header(data, pos, implicit=False, little=True)
        if length == _UNDEFINED:
            raise _Unwalkable
        _fits(tag, pos, start, length, size)
        if tag == 0x00020000 and length == 4:  # File Meta Information Group Length
            declared_end = start + 4 + struct.unpack_from("<L", data, start)[0]
        if tag == 0x00020010:
            syntax = bytes(data[start : start + length]).rstrip(b"\x00 ")
        pos = start + length
    if declared_end is not None and declared_end > size:
        raise _Cut(
            f"truncated: the file meta group (0002,0000) declares its end at byte {declared_end}, "
            f"the file ends at byte {size}: {REMEDY}"
        )
    if pos < size < pos + 4:
        raise _Cut(f"truncated: the file ends inside the header of {_named(data, pos, '<')}: {REMEDY}")
    if seen and pos == size:
        raise _Cut(f"truncated: the file ends after the file meta group, before the data set: {REMEDY}")
    return pos, syntax if seen else None


def _named(data: bytes | memoryview, pos: int, end: str) -> str:
    """The element at ``pos`` by its tag when the file still holds the tag, else by its offset."""
    if pos + 4 <= len(data):
        group, elem = struct.unpack_from(end + "HH", data, pos)
        return f"element {_tag(group << 16 | elem)} at byte {pos}"
    return f"the element at byte {pos}"


def _header(data: bytes | memoryview, pos: int, implicit: bool, little: bool) -> tuple[int, int, int, bytes]:
    """(tag, value start, value length, VR) of the element at ``pos``; a cut header raises."""
    size = len(data)
    end = "<" if little else ">"
    if pos + 8 > size:
        raise _Cut(f"truncated: the file ends inside the header of {_named(data, pos, end)}: {REMEDY}")
    group, elem = struct.unpack_from(end + "HH", data, pos)
    tag = group << 16 | elem
    if implicit or group == 0xFFFE:
        return tag, pos + 8, struct.unpack_from(end + "L", data, pos + 4)[0], b""
    vr = bytes(data[pos + 4 : pos + 6])
    if vr in _LONG_VRS:
        if pos + 12 > size:
            raise _Cut(
                f"truncated: the file ends inside the header of element {_tag(tag)} at byte {pos}: {REMEDY}"
            )
        return tag, pos + 12, struct.unpack_from(end + "L", data, pos + 8)[0], vr
    return tag, pos + 8, struct.unpack_from(end + "H", data, pos + 6)[0], vr


def _fits(tag: int, pos: int, start: int, length: int, size: int) -> None:
    if start + length > size:
        raise _Cut(
            f"truncated: element {_tag(tag)} at byte {pos} declares {length} bytes but the file ends "
            f"{size - start} bytes into it: {REMEDY}"
        )


def _is_sequence(tag: int, vr: bytes, implicit: bool) -> bool:
    if not implicit:
        return vr in (b"SQ", b"UN")  # UN of undefined length is a sequence (PS3.5 6.2.2)
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return True  # an unknown tag of undefined length: only a sequence can have one


def _items_of(
    data: bytes | memoryview, pos: int, end: int, implicit: bool, little: bool, depth: int, top: bool = False
) -> int:
    """Walk the elements from ``pos`` to ``end`` (a defined length) or to the item delimiter
    (``end`` < 0); at the top level stop at the pixel data. Returns where the walk stopped."""
    size = len(data)
    limit = size if end < 0 else end
    while pos < limit:
        tag, start, length, vr = _header(data, pos, implicit, little)
        if tag == _ITEM_END and end < 0:
            return start
        if top and tag == _PIXEL_DATA:
            return pos  # the pixel data is measured by the stream reader itself
        if length == _UNDEFINED:
            if not _is_sequence(tag, vr, implicit):
                raise _Unwalkable
            # a UN sequence of undefined length is encoded implicit VR little endian inside (PS3.5 6.2.2)
            inner = (True, True) if vr == b"UN" else (implicit, little)
            pos = _sequence(data, start, *inner, depth + 1)
            continue
        _fits(tag, pos, start, length, size)
        pos = start + length
    if end < 0:
        raise _Cut(f"truncated: the file ends inside a sequence item (no item delimiter): {REMEDY}")
    return pos


def _sequence(data: bytes | memoryview, pos: int, implicit: bool, little: bool, depth: int) -> int:
    """Walk the items of an undefined-length sequence from ``pos``; returns the end of its delimiter."""
    if depth > _MAX_DEPTH:
        raise _Unwalkable
    size = len(data)
    while True:
        if pos + 8 > size:
            raise _Cut(
                f"truncated: the file ends inside a sequence at byte {pos} (no sequence delimiter): {REMEDY}"
            )
        tag, start, length, _vr = _header(data, pos, True, little)
        if tag == _SEQ_END:
            return start
        if tag != _ITEM:
            raise _Unwalkable
        if length == _UNDEFINED:
            pos = _items_of(data, start, -1, implicit, little, depth)
        else:
            _fits(tag, pos, start, length, size)
            pos = start + length
