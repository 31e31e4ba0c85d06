"""De-identify the common file straight from its bytes: explicit VR little endian with a file meta group.

Why this is hand-written: pydicom has no API that streams raw data elements without building a
``Dataset`` (``dcmread`` and ``data_element_generator`` make element objects, datasets and, inside
sequences, converted values), and the profile must be applied per element anyway. Parsing the header
through pydicom was the largest share of a file's CPU time. This module walks the elements over the
memory map with :func:`struct.unpack_from` (PS3.5 7.1 element encodings, 7.5 sequences and items,
A.4 encapsulated pixel data) and applies the *same* resolved profile with the same value helpers as
:class:`cohortpool.deid.actions.Cleaner` (keyed pseudonyms, UIDs and date shifts, the Clean
Descriptors vocabulary, markers, private elements removed), writing the output header bytes directly
in the form :mod:`cohortpool.deid.encode` gives them: unchanged elements copied, sequences and items
re-encoded with undefined length.

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
from typing import Any, cast

from pydicom.dataelem import RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from cohortpool.deid.actions import (
    _DUMMIES,
    _IDENTITY,
    _STRING_VRS,
    _TEXT_GUARD,
    ACCESSION_NUMBER,
    PATIENT_ID,
    TRAILING_PADDING,
    UNLISTED_DATE,
    Cleaner,
    Context,
    ascii_values,
    raw_ascii_values,
    raw_text_allowed,
)
from cohortpool.deid.encode import text_bytes, zero_bytes
from cohortpool.deid.profile import Rule
from cohortpool.deid.pseudonym import shift_da, shift_dt
from cohortpool.deid.uids import WELL_KNOWN_ROOT

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
Element = tuple[int, str, int, int, int, Any]


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
def _dataset(buf: Any, pos: int, end: int, depth: int, top: bool) -> tuple[list[Element], int]:
    """Elements from ``pos`` up to ``end`` (a defined length), or to an item delimiter (``end`` < 0:
    an undefined-length item), or, at the top level, to the pixel data element.

    Returns the elements and the offset after them (after the item delimiter, or at the pixel data).
    """
    if depth > _MAX_DEPTH:
        raise Decline("nested too deep")
    limit = end if end >= 0 else len(buf)
    elements: list[Element] = []
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


def top_dataset(buf: mmap.mmap, elements: list[Element]) -> Dataset:
    """A pydicom ``Dataset`` of the raw top-level elements, as ``dcmread`` would hold them."""
    ds = Dataset()
    store = ds._dict  # pydicom's element store (what dcmread fills)
    for tag, vr, _, start, stop, items in elements:
        length = stop - start
        value = buf[start:stop] if length else _EMPTY[vr]
        if items is not None:  # a sequence: its raw items (any access makes the caller decline)
            length = len(value) if value is not None else 0
        store[BaseTag(tag)] = RawDataElement(BaseTag(tag), vr, length, value, start, False, True)
    return ds


class FastPath:
    """Applies a worker's :class:`Cleaner` configuration to raw elements (one per worker process)."""

    def __init__(self, cleaner: Cleaner, markers: list[tuple[int, bytes]]) -> None:
        if cleaner.safe_private:
            raise ValueError("the Retain Safe Private option reads private creators: pydicom path only")
        self.cleaner = cleaner
        self.profile = cleaner.profile
        self.keys = cleaner.pseudonymiser
        self.uids = cleaner.uids
        self.vocabulary = cleaner.profile.vocabulary
        self.markers = markers
        self.marker_tags = {tag for tag, _ in markers}
        self._rules: dict[int, Rule | None] = {}
        self._converted: set[int] = set()

    # -- reading ----------------------------------------------------------------------------------
    def parse(self, buf: mmap.mmap) -> tuple[str, list[Element], int, int, list[Element] | None]:
        """Transfer syntax, top-level elements, pixel data range and the elements after it."""
        syntax, pos = _meta(buf)
        elements, pixels = _dataset(buf, pos, len(buf), 0, True)
        end = _pixel_end(buf, pixels)
        tail = None
        if end < len(buf) and any(buf[end:]):
            tail, _ = _dataset(buf, end, len(buf), 0, False)
        return syntax, elements, pixels, end, tail

    # -- cleaning ---------------------------------------------------------------------------------
    def render(
        self, buf: mmap.mmap, elements: list[Element], ds: Dataset, ctx: Context
    ) -> list[tuple[int, bytes]]:
        """The cleaned top-level elements with the markers, in tag order: (tag, encoded element)."""
        # the elements pydicom has converted while the header was checked and the hook ran: their
        # values are read through pydicom, as the pydicom path reads them; the rest from raw bytes
        converted = {int(t) for t, e in ds._dict.items() if not isinstance(e, RawDataElement)}
        for tag, _, _, _, _, items in elements:
            if items is not None and tag in converted:
                raise Decline("a sequence was read before cleaning")
        self._converted = converted
        out = [e for e in self._level(buf, elements, ctx, ds) if e[0] not in self.marker_tags]
        out += self.markers
        out.sort(key=_first)
        return out

    def tail(self, buf: mmap.mmap, elements: list[Element], ctx: Context) -> bytes:
        """The cleaned elements after the pixel data (cleaned as nested: ``top=False``)."""
        return b"".join(e[1] for e in self._level(buf, elements, ctx, None))

    def _rule(self, tag: int) -> Rule | None:
        try:
            return self._rules[tag]
        except KeyError:
            rule = self._rules[tag] = self.profile.rule(tag)
            return rule

    def _level(
        self, buf: mmap.mmap, elements: list[Element], ctx: Context, ds: Dataset | None
    ) -> list[tuple[int, bytes]]:
        """One dataset's cleaned elements (``ds``: the top level's pydicom view, ``None`` when nested)."""
        out: list[tuple[int, bytes]] = []
        overlays: set[int] = set()
        for el in elements:
            tag = el[0]
            group = tag >> 16
            if group & 1 or not tag & 0xFFFF or tag == TRAILING_PADDING:
                continue  # private elements, group lengths and padding are removed
            if tag in _IDENTITY:
                out.append((tag, self._identity(buf, el, ctx, ds)))
                continue
            vr = el[1]
            rule = self._rule(tag)
            if rule is None:
                if vr == "SQ":
                    out.append((tag, self._sequence(buf, el, ctx)))
                elif vr == "UI":
                    values = self._ascii(buf, el, ds)
                    if any(not v.startswith(WELL_KNOWN_ROOT) for v in values if v):
                        out.append((tag, _element(tag, "UI", self._mapped(values))))
                    else:
                        out.append((tag, buf[el[2] : el[4]]))
                elif vr in ("DA", "DT"):
                    encoded = self._dates(buf, el, UNLISTED_DATE, ctx, ds)
                    if encoded is not None:
                        out.append((tag, encoded))
                elif vr not in _TEXT_GUARD:
                    out.append((tag, buf[el[2] : el[4]]))
                continue
            if 0x6000 <= group <= 0x601E and rule.action != "K":
                overlays.add(group)
                continue
            encoded = self._act(rule.action, buf, el, rule, ctx, ds)
            if encoded is not None:
                out.append((tag, encoded))
        if overlays:
            out = [e for e in out if e[0] >> 16 not in overlays]
        return out

    def _sequence(self, buf: mmap.mmap, el: Element, ctx: Context) -> bytes:
        parts = [_header(el[0], "SQ", _UNDEFINED)]
        for item in el[5] or ():
            parts.append(_ITEM_BYTES)
            parts.extend(e[1] for e in self._level(buf, item, ctx, None))
            parts.append(_ITEM_END_BYTES)
        parts.append(_SEQ_END_BYTES)
        return b"".join(parts)

    def _ascii(self, buf: mmap.mmap, el: Element, ds: Dataset | None) -> list[str]:
        if ds is not None and el[0] in self._converted:
            return ascii_values(ds, el[0])
        return raw_ascii_values(buf[el[3] : el[4]])

    def _mapped(self, values: list[str]) -> bytes:
        return text_bytes("UI", [self.uids.map(v) for v in values])

    def _identity(self, buf: mmap.mmap, el: Element, ctx: Context, ds: Dataset | None) -> bytes:
        tag, vr = el[0], el[1]
        if tag == ACCESSION_NUMBER and ds is not None:  # read as the pydicom path reads it
            text = str(ds[tag].value or "").strip()
        elif tag in (ACCESSION_NUMBER, PATIENT_ID) and ds is None:
            text = _plain_text(buf[el[3] : el[4]])
        else:
            text = ""  # the top-level patient name and ID become the pseudonym whatever they hold
        if tag == ACCESSION_NUMBER:
            value = self.keys.accession_digest(text) if text else ""
        elif ds is not None:
            value = ctx.patient_id
        elif tag == PATIENT_ID and text:
            value = self.keys.patient_id(text)
        else:
            value = ""
        return _element(tag, vr, text_bytes(vr, value))

    def _act(
        self, action: str, buf: mmap.mmap, el: Element, rule: Rule, ctx: Context, ds: Dataset | None
    ) -> bytes | None:
        """The encoded element after ``action`` (Cleaner's handlers, same order of cases), or ``None``."""
        tag, vr = el[0], el[1]
        if action == "X":
            return None
        if action in ("Z", "X/Z"):
            return _header(tag, "SQ", _UNDEFINED) + _SEQ_END_BYTES if vr == "SQ" else _header(tag, vr, 0)
        if action in ("D", "X/D", "X/Z/D", "Z/D"):
            if vr == "SQ":
                return self._sequence(buf, el, ctx)
            if vr == "UI":
                return self._act("U", buf, el, rule, ctx, ds)
            if vr in ("DA", "DT") and (self.cleaner.shift_dates or self.cleaner.keep_dates):
                return self._dates(buf, el, rule, ctx, ds)
            if vr in _DUMMIES:
                return _element(tag, vr, text_bytes(vr, _DUMMIES[vr]))
            return _element(tag, vr, zero_bytes(vr))
        if action == "K":
            return self._sequence(buf, el, ctx) if vr == "SQ" else buf[el[2] : el[4]]
        if action == "C":
            if vr == "SQ":
                return self._sequence(buf, el, ctx)
            if vr in ("DA", "DT"):
                return self._dates(buf, el, rule, ctx, ds)
            if vr == "UI":
                return self._act("U", buf, el, rule, ctx, ds)
            if vr in _STRING_VRS and vr != "PN" and vr != "TM":
                if self._allowed(buf, el, ds):
                    return buf[el[2] : el[4]]
                return self._fallback(buf, el, rule, ctx, ds)
            if vr in ("PN", "OB", "OW"):
                return self._fallback(buf, el, rule, ctx, ds)
            return buf[el[2] : el[4]]  # times and numbers are kept
        if action in ("U", "X/Z/U*"):
            if vr == "SQ":
                return self._sequence(buf, el, ctx)
            if vr != "UI":
                return self._fallback(buf, el, rule, ctx, ds)
            return _element(tag, "UI", self._mapped(self._ascii(buf, el, ds)))
        raise Decline(f"action {action} not handled")

    def _fallback(
        self, buf: mmap.mmap, el: Element, rule: Rule, ctx: Context, ds: Dataset | None
    ) -> bytes | None:
        action = rule.basic if rule.basic not in ("C", "K") else "X"
        return self._act(action, buf, el, rule, ctx, ds)

    def _allowed(self, buf: mmap.mmap, el: Element, ds: Dataset | None) -> bool:
        if ds is not None and el[0] in self._converted:
            return self.cleaner._allowed_text(ds, el[0])
        return raw_text_allowed(buf[el[3] : el[4]], self.vocabulary)

    def _dates(
        self, buf: mmap.mmap, el: Element, rule: Rule, ctx: Context, ds: Dataset | None
    ) -> bytes | None:
        if self.cleaner.keep_dates:
            return buf[el[2] : el[4]]
        if not self.cleaner.shift_dates:
            return self._fallback(buf, el, rule, ctx, ds)
        vr = el[1]
        shift = shift_da if vr == "DA" else shift_dt
        shifted = [shift(v, ctx.shift_days) for v in self._ascii(buf, el, ds) if v.strip()]
        if any(s is None for s in shifted):
            return self._fallback(buf, el, rule, ctx, ds)
        return _element(el[0], vr, text_bytes(vr, [s for s in shifted if s is not None]))


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


def _plain_text(raw: bytes) -> str:
    """A nested identifier's text when it reads the same in every character set, else decline."""
    value = raw.rstrip(b"\x00 ")
    if any(b < 0x20 or b > 0x7E for b in value) or b"\\" in value:
        raise Decline("nested identifier is not plain ASCII")
    return value.decode("ascii").strip()


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
