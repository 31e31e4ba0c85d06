"""De-identify the common file straight from its bytes: explicit VR little endian with a file meta group.

Why this is hand-written: pydicom has no API that streams raw data elements without building a
``Dataset`` (``dcmread`` and ``data_element_generator`` make element objects, datasets and, inside
sequences, converted values), and the profile must be applied per element anyway. Parsing the header
through pydicom was the largest share of a file's CPU time. This module walks the elements over the
memory map with :func:`struct.unpack_from` (PS3.5 7.1 element encodings, 7.5 sequences and items,
A.4 encapsulated pixel data) and asks the *same* decision function as
:class:`cohortpool.deid.actions.Cleaner` what to do with each element
(:func:`cohortpool.deid.decide.decide`: profile, retention list, keyed pseudonyms, UIDs and date
shifts, the Clean Descriptors vocabulary), writing the output header bytes directly in the form
:mod:`cohortpool.deid.encode` gives them: unchanged elements copied, sequences and items re-encoded
with undefined length.

The pydicom path stays the oracle and the fallback: the output of every file this path accepts must
be byte-identical to it (``tests/unit/test_deid_fastpath.py`` checks every file of the synthetic
consortium and the planted corpus). Anything unusual raises :class:`Decline` and the pydicom path runs
instead: implicit VR, big endian, deflated or unknown private transfer syntaxes, no preamble or file
meta, a VR it does not know (``UN`` included), undefined lengths outside sequences, tags out of order,
odd structures, values whose decoding depends on the character set. This path never decides that a
file is bad: quarantine reasons come from the pydicom path alone.

Values the profile must read at the top level (UIDs, dates, descriptors, identities) are read through
a pydicom ``Dataset`` of the raw top-level elements (:func:`top_dataset`), the same one handed to the
manifest hook, so the pre-cleaning checks, the hook and any value pydicom converts on the way are
exactly those of the pydicom path.
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from typing import Any, cast

from pydicom.dataelem import RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from cohortpool.deid.actions import TRAILING_PADDING, Cleaner, Context
from cohortpool.deid.decide import (
    ACCESSION_NUMBER,
    DESCEND,
    DROP_GROUP,
    EMPTY,
    KEEP,
    REMOVE,
    REPLACE,
    Element,
    NotPlainText,
    Reuse,
    decide,
)
from cohortpool.deid.encode import text_bytes, zero_bytes
from cohortpool.deid.pixel_text import text_segments
from cohortpool.deid.profile import Rule

#: VR -> True when it has the 4-byte length form (PS3.5 Table 7.1-1); ``UN`` deliberately absent
_VRS = {
    vr.encode(): vr in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UR", "UT", "UV")
    for vr in (
        *("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL"),
        *("OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UR", "US", "UT"),
        "UV",
    )
}
_VR_TEXT = {code: code.decode() for code in _VRS}
_HEADER = struct.Struct("<HH2sH")
_LONG_LENGTH = struct.Struct("<HL")
_TAG_LENGTH = struct.Struct("<HHL")
_SHORT_PACK = struct.Struct("<HH2sH").pack
_LONG_PACK = struct.Struct("<HH2s2xL").pack
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_OTHER_PIXELS = (0x7FE00008, 0x7FE00009)
_ITEM_BYTES = _TAG_LENGTH.pack(0xFFFE, 0xE000, _UNDEFINED)
_ITEM_END_BYTES = _TAG_LENGTH.pack(0xFFFE, 0xE00D, 0)
_SEQ_END_BYTES = _TAG_LENGTH.pack(0xFFFE, 0xE0DD, 0)
#: transfer syntaxes whose data set is not explicit VR little endian as stored (PS3.5 Annex A)
_NOT_FOR_ME = {
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian
    "1.2.840.10008.1.2.1.99",  # deflated
    "1.2.840.10008.1.2.4.95",  # JPIP referenced deflate
}
_UID_CHARS = frozenset(b"0123456789.")
_MAX_DEPTH = 32
#: the value dcmread gives a zero-length element (``None`` for binary VRs)
_EMPTY: dict[str, bytes | None] = {
    vr: cast(bytes | None, empty_value_for_VR(vr, raw=True)) for vr in _VR_TEXT.values()
}

#: (tag, VR, header start, value start, value end, items or None)
Element_ = tuple[int, str, int, int, int, Any]


def marker_bytes(markers: tuple[RawDataElement, ...]) -> list[tuple[int, bytes]]:
    """The de-identification marker elements (:mod:`.markers`), encoded as the encoder writes them."""
    return [(int(m.tag), _element(int(m.tag), str(m.VR), bytes(m.value or b""))) for m in markers]


class Decline(Exception):
    """Not for the fast path: the caller runs the pydicom path (never a verdict on the file)."""


def _header(tag: int, vr: str, length: int) -> bytes:
    if vr in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"):
        return _LONG_PACK(tag >> 16, tag & 0xFFFF, vr.encode(), length)
    return _SHORT_PACK(tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _element(tag: int, vr: str, value: bytes) -> bytes:
    return _header(tag, vr, len(value)) + value


# -- parsing ---------------------------------------------------------------------------------------
def _dataset(buf: Any, pos: int, end: int, depth: int, top: bool) -> tuple[list[Element_], int]:
    """Elements from ``pos`` up to ``end`` (a defined length), or to an item delimiter (``end`` < 0:
    an undefined-length item), or, at the top level, to the pixel data element.

    Returns the elements and the offset after them (after the item delimiter, or at the pixel data).
    """
    if depth > _MAX_DEPTH:
        raise Decline("nested too deep")
    limit = end if end >= 0 else len(buf)
    elements: list[Element_] = []
    last = -1
    while pos < limit or end < 0:
        if pos + 8 > limit:
            raise Decline("element header runs past the end")
        group, elem, code, short = _HEADER.unpack_from(buf, pos)
        tag = group << 16 | elem
        if group == 0xFFFE:
            if end < 0 and tag == _ITEM_END and _TAG_LENGTH.unpack_from(buf, pos)[2] == 0:
                return elements, pos + 8
            raise Decline("unexpected delimiter")
        if top and tag == _PIXEL_DATA:
            return elements, pos
        if tag <= last or (top and tag in _OTHER_PIXELS):
            raise Decline("tags out of order or float pixel data")
        last = tag
        long = _VRS.get(code)
        if long is None:
            raise Decline("VR not handled")
        if long:
            if pos + 12 > limit:
                raise Decline("element header runs past the end")
            reserved, length = _LONG_LENGTH.unpack_from(buf, pos + 6)
            if reserved:
                raise Decline("reserved bytes set")
            start = pos + 12
        else:
            length, start = short, pos + 8
        vr = _VR_TEXT[code]
        items = None
        if vr == "SQ":
            items, stop = _sequence(buf, start, length, limit, depth)
        elif length == _UNDEFINED:
            raise Decline("undefined length outside a sequence")
        else:
            stop = start + length
            if stop > limit:
                raise Decline("value runs past the end")
        elements.append((tag, vr, pos, start, stop, items))
        pos = stop
    if pos != limit:
        raise Decline("item length does not match its elements")
    if top:
        raise Decline("no pixel data")
    return elements, pos


def _sequence(buf: Any, pos: int, length: int, limit: int, depth: int) -> tuple[list[list[Any]], int]:
    """Items of a sequence value starting at ``pos``; returns them and the offset after the value."""
    end = -1 if length == _UNDEFINED else pos + length
    if end > limit:
        raise Decline("sequence runs past the end")
    items: list[list[Any]] = []
    while end < 0 or pos < end:
        if pos + 8 > limit:
            raise Decline("item header runs past the end")
        group, elem, item_length = _TAG_LENGTH.unpack_from(buf, pos)
        tag = group << 16 | elem
        pos += 8
        if tag == _SEQ_END and end < 0 and item_length == 0:
            return items, pos
        if tag != _ITEM:
            raise Decline("not an item")
        if item_length == _UNDEFINED:
            elements, pos = _dataset(buf, pos, -1, depth + 1, False)
        else:
            if pos + item_length > (end if end >= 0 else limit):
                raise Decline("item runs past its sequence")
            elements, pos = _dataset(buf, pos, pos + item_length, depth + 1, False)
        items.append(elements)
    if pos != end:
        raise Decline("sequence length does not match its items")
    return items, pos


def _meta(buf: Any) -> tuple[str, int]:
    """The transfer syntax of the file meta group (PS3.10 7.1) and where the data set starts."""
    if len(buf) < 144 or buf[128:132] != b"DICM":
        raise Decline("no preamble")
    pos, syntax = 132, None
    while pos + 8 <= len(buf):
        group, elem, code, short = _HEADER.unpack_from(buf, pos)
        if group != 2:
            break
        long = _VRS.get(code)
        if long is None or code == b"SQ":
            raise Decline("file meta VR not handled")
        if long:
            length = _LONG_LENGTH.unpack_from(buf, pos + 6)[1]
            start = pos + 12
        else:
            length, start = short, pos + 8
        if length == _UNDEFINED or start + length > len(buf):
            raise Decline("file meta element runs past the end")
        if elem == 0x0010:
            syntax = _uid(buf[start : start + length])
        pos = start + length
    if syntax is None or syntax in _NOT_FOR_ME or not syntax.startswith("1.2.840.10008.1.2."):
        raise Decline("transfer syntax not handled")
    if pos + 8 > len(buf) or _HEADER.unpack_from(buf, pos)[0] in (0, 2):
        raise Decline("command group or no data set")
    return syntax, pos


def _uid(raw: bytes) -> str:
    """A single UID value as pydicom reads it (trailing NULs and spaces dropped); declines the unusual."""
    value = raw.rstrip(b"\x00 ")
    if not value or not _UID_CHARS.issuperset(value):
        raise Decline("UID value not plain")
    return value.decode("ascii")


def top_dataset(buf: mmap.mmap, elements: list[Element_]) -> Dataset:
    """A pydicom ``Dataset`` of the raw top-level elements, as ``dcmread`` would hold them."""
    ds = Dataset()
    store = ds._dict  # pydicom's element store (what dcmread fills)
    for tag, vr, _, start, stop, items in elements:
        length = stop - start
        value = buf[start:stop] if length else _EMPTY[vr]
        if items is not None:  # a sequence: its raw items (any access makes the caller decline)
            length = len(value) if value is not None else 0
        key = BaseTag(tag)
        store[key] = RawDataElement(key, vr, length, value, start, False, True)
    return ds


class FastPath:
    """Applies a worker's :class:`Cleaner` configuration to raw elements (one per worker process)."""

    def __init__(self, cleaner: Cleaner, markers: list[tuple[int, bytes]]) -> None:
        if cleaner.safe_private:
            raise ValueError("the Retain Safe Private option reads private creators: pydicom path only")
        self.cleaner = cleaner
        self.profile = cleaner.profile
        self.markers = markers
        self.marker_tags = {tag for tag, _ in markers}
        self._rules: dict[int, Rule | None] = {}
        self._converted: set[int] = set()
        #: tag -> the VR and verdict decide() gave it without reading a value (``Verdict.static``)
        self._static: dict[int, Reuse] = {}
        #: (note, tag, VR) -> what the retention list took away (as ``Cleaner.unlisted``)
        self.unlisted: Counter[tuple[str, int, str]] = Counter()

    # -- reading ----------------------------------------------------------------------------------
    def parse(self, buf: mmap.mmap) -> tuple[str, list[Element_], int, int, list[Element_] | None]:
        """Transfer syntax, top-level elements, pixel data range and the elements after it."""
        syntax, pos = _meta(buf)
        elements, pixels = _dataset(buf, pos, len(buf), 0, True)
        end = _pixel_end(buf, pixels)
        if text_segments(buf, syntax, pixels, end):
            raise Decline("text segments in a codestream header")  # the pydicom path blanks them
        tail = None
        if end < len(buf) and any(buf[end:]):
            tail, _ = _dataset(buf, end, len(buf), 0, False)
        return syntax, elements, pixels, end, tail

    # -- cleaning ---------------------------------------------------------------------------------
    def render(
        self, buf: mmap.mmap, elements: list[Element_], ds: Dataset, ctx: Context
    ) -> list[tuple[int, bytes]]:
        """The cleaned top-level elements with the markers, in tag order: (tag, encoded element)."""
        # the elements pydicom has converted while the header was checked and the hook ran: their
        # values are read through pydicom, as the pydicom path reads them; the rest from raw bytes
        converted = {int(t) for t, e in ds._dict.items() if not isinstance(e, RawDataElement)}
        for tag, _, _, _, _, items in elements:
            if items is not None and tag in converted:
                raise Decline("a sequence was read before cleaning")
        self._converted = converted
        self.unlisted = Counter()
        out = [e for e in self._level(buf, elements, ctx, ds) if e[0] not in self.marker_tags]
        out += self.markers
        out.sort(key=_first)
        return out

    def tail(self, buf: mmap.mmap, elements: list[Element_], ctx: Context) -> bytes:
        """The cleaned elements after the pixel data (cleaned as nested: ``top=False``)."""
        return b"".join(e[1] for e in self._level(buf, elements, ctx, None))

    def _rule(self, tag: int) -> Rule | None:
        try:
            return self._rules[tag]
        except KeyError:
            rule = self._rules[tag] = self.profile.rule(tag)
            return rule

    def _level(
        self, buf: mmap.mmap, elements: list[Element_], ctx: Context, ds: Dataset | None
    ) -> list[tuple[int, bytes]]:
        """One dataset's cleaned elements (``ds``: the top level's pydicom view, ``None`` when nested)."""
        out: list[tuple[int, bytes]] = []
        overlays: set[int] = set()
        top = ds is not None
        policy, patient_id, shift_days = self.cleaner.policy, ctx.patient_id, ctx.shift_days
        converted = self._converted if top else _NOTHING
        static = self._static
        for el in elements:
            tag = el[0]
            if tag >> 16 & 1 or not tag & 0xFFFF or tag == TRAILING_PADDING:
                continue  # private elements, group lengths and padding are removed
            vr = el[1]
            cached = static.get(tag)
            if cached is not None and cached.vr == vr:
                verdict = cached.verdict
            else:
                if top and (tag in converted or tag == ACCESSION_NUMBER):
                    # read through pydicom, as the pydicom path reads it (decoded with the character set)
                    element = Element(tag, vr, None, ds[tag].value, True)  # type: ignore[index]
                else:
                    element = Element(tag, vr, buf[el[3] : el[4]], top=top)
                try:
                    verdict = decide(self._rule(tag), element, policy, patient_id, shift_days, ctx.echo)
                except NotPlainText as exc:
                    raise Decline(str(exc)) from None
                if verdict.static:
                    static[tag] = Reuse(vr, verdict)
            if verdict.note:
                self.unlisted[(verdict.note, tag, vr)] += 1
            op = verdict.op
            if op == KEEP:
                out.append((tag, buf[el[2] : el[4]]))
            elif op == REPLACE:
                out.append((tag, _element(tag, vr, text_bytes(vr, list(verdict.values)))))
            elif op == DESCEND:
                out.append((tag, self._sequence(buf, el, ctx)))
            elif op == EMPTY:
                out.append((tag, _empty_sequence(tag) if vr == "SQ" else _header(tag, vr, 0)))
            elif op == DROP_GROUP:
                overlays.add(tag >> 16)
            elif op != REMOVE:  # ZERO
                out.append((tag, _element(tag, vr, zero_bytes(vr))))
        if overlays:
            out = [e for e in out if e[0] >> 16 not in overlays]
        return out

    def _sequence(self, buf: mmap.mmap, el: Element_, ctx: Context) -> bytes:
        parts = [_header(el[0], "SQ", _UNDEFINED)]
        for item in el[5] or ():
            parts.append(_ITEM_BYTES)
            parts.extend(e[1] for e in self._level(buf, item, ctx, None))
            parts.append(_ITEM_END_BYTES)
        parts.append(_SEQ_END_BYTES)
        return b"".join(parts)


_NOTHING: frozenset[int] = frozenset()


def _empty_sequence(tag: int) -> bytes:
    return _header(tag, "SQ", _UNDEFINED) + _SEQ_END_BYTES


def _first(entry: tuple[int, bytes]) -> int:
    return entry[0]


def uid_of(rendered: list[tuple[int, bytes]], tag: int) -> str:
    """The single UID value of a rendered top-level element (what ``str(ds.<keyword>)`` gives)."""
    for found, encoded in rendered:
        if found == tag:
            if encoded[4:6] != b"UI":
                break
            return _uid(encoded[8:])
    raise Decline("no plain UID")


def _pixel_end(buf: mmap.mmap, pos: int) -> int:
    """End of the pixel data element at ``pos`` (native: by length; encapsulated: item by item)."""
    group, elem, code, _ = _HEADER.unpack_from(buf, pos)
    if code not in (b"OB", b"OW"):
        raise Decline("pixel data VR")
    length = _LONG_LENGTH.unpack_from(buf, pos + 6)[1]
    cursor = pos + 12
    if length != _UNDEFINED:
        if cursor + length > len(buf):
            raise Decline("pixel data runs past the end")
        return int(cursor + length)
    while True:
        if cursor + 8 > len(buf):
            raise Decline("encapsulated pixel data without delimiter")
        group, elem, item_length = _TAG_LENGTH.unpack_from(buf, cursor)
        tag = group << 16 | elem
        if tag == _SEQ_END:
            return int(cursor) + 8
        if tag != _ITEM or item_length == _UNDEFINED:
            raise Decline("odd encapsulated pixel data")
        cursor += 8 + item_length
        if cursor > len(buf):
            raise Decline("fragment runs past the end")
