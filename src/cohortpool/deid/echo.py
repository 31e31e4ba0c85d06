"""The file's own identifiers, looked for in the text it keeps.

The retention list keeps a few free-text attributes because the study needs them and the standard
does not name them (Manufacturer, Manufacturer's Model Name, Software Versions, sequence and kernel
names, code strings...). Their values describe equipment, but a person types them, and a hostile or
careless export can put the patient's name or record number there. Nothing general can tell a
product name from a person's, but the file itself says who it is about: its person names, its
Patient ID, Other Patient IDs (and the Other Patient IDs Sequence's), accession number, birth date
and telephone numbers. A kept value that repeats any of them is not kept
(:func:`cohortpool.deid.decide.decide` gives it the VR's dummy, and the ledger counts it as
``identifier echoed``), and neither is one written as a person name (``FAMILY^GIVEN``: no equipment
text has a caret; counted as ``person name form``).

How a value is compared (upper-cased):

- a name part (family, given and middle names, each group of a PN value) of 3 to 5 ASCII letters is
  looked for as a word of the value, so that ``WEN`` does not match ``OWEN``; parts of 2 letters are
  not looked for: ``HU``, ``US`` and ``OD`` are Rescale Type's defined terms, and the synthetic
  consortium's patient ``Hu`` lost every CT's Rescale Type when they were;
- longer name parts, name parts in other scripts (CJK names carry no spaces), and identifiers and
  dates of 4 characters or more are looked for anywhere in the value with everything but letters and
  digits taken out, so that ``1958-03-12`` and ``M 1234 567`` are found too;
- identifiers shorter than 4 characters are ignored: they would match version and frame numbers.

A false match costs an equipment name in one file; a missed one would release a name.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset

#: Patient ID, Other Patient IDs, Accession Number, Patient's Birth Date, Patient's Telephone Numbers,
#: Medical Record Locator, Patient's Birth Time is left out (a time matches acquisition times)
_IDENTIFIERS = (0x00100020, 0x00101000, 0x00080050, 0x00100030, 0x00102154, 0x00101090)
#: Other Patient IDs Sequence: the patient's other record numbers, each item's Patient ID
_OTHER_IDS_SEQUENCE = 0x00101002
_PATIENT_ID = 0x00100020
_WORD = re.compile(r"[^\W_]+")
_NOT_ALNUM = re.compile(r"[\W_]+")
#: name parts up to this length (ASCII letters) must be whole words of the value to match
_SHORT_NAME = 5
#: shorter name parts are not looked for (they are the codes of kept code strings)
_SHORTEST_NAME = 3
#: identifiers shorter than this are not looked for
_SHORTEST_IDENTIFIER = 4
#: more distinct name parts and identifiers than a real header holds (a patient, a few physicians and
#: operators, a handful of record numbers: a few dozen at most)
_MOST_IDENTIFIERS = 512
#: the bytes that end a run of encoded text (ISO 2022 returns to ASCII at each): the value delimiter,
#: and in a PN value the component delimiter and the group separator
_TEXT_DELIMITERS = {0x5C}
_PN_DELIMITERS = {0x5C, 0x5E, 0x3D}
#: what reading a damaged value can raise; such a value is not looked for (the cleaners judge it)
_UNREADABLE = (UnicodeError, LookupError, ValueError, TypeError)


def compact(text: str) -> str:
    """``text`` upper-cased with everything but letters and digits taken out."""
    return _NOT_ALNUM.sub("", text.upper())


@dataclass(frozen=True)
class Echo:
    """What identifies one file's patient (and the people it names), to be kept out of kept text.

    ``words`` must match a whole word; ``needles`` match anywhere in the compacted value.
    ``encodings`` are the Python codecs of the file's Specific Character Set, to read raw values.
    ``overflow``: the file names more identifiers than any real header does, and every kept text
    value is taken to repeat one (comparing each of thousands of values with each of thousands of
    names would take hours; a hostile file can hold both).
    """

    words: frozenset[str] = frozenset()
    needles: tuple[str, ...] = ()
    encodings: tuple[str, ...] = ("iso8859",)
    overflow: bool = False

    def __bool__(self) -> bool:
        return bool(self.words or self.needles or self.overflow)

    def heard_in(self, text: str) -> bool:
        """``text`` repeats one of the file's identifiers."""
        if self.overflow:
            return True
        if not self:
            return False
        upper = text.upper()
        if self.words and not self.words.isdisjoint(_WORD.findall(upper)):
            return True
        flat = compact(upper)
        return any(needle in flat for needle in self.needles)

    def decode(self, raw: bytes) -> str | None:
        """A raw text value decoded with the file's character sets (``None``: it cannot be)."""
        try:
            return _decoded(raw, self.encodings, _TEXT_DELIMITERS)
        except _UNREADABLE:
            return None


NO_ECHO = Echo()


def echo_of(ds: Dataset) -> Echo:
    """The identifiers of a top-level data set: every person name in it and the identifiers above.

    Reads raw values without converting them in ``ds`` (what the cleaners do next depends on which
    elements pydicom has converted).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the cleaners report an unknown character set, once
            encodings = tuple(convert_encodings(list(_values(ds, 0x00080005, ("ISO_IR 6",)))))
    except (LookupError, ValueError):
        encodings = ("iso8859",)
    words: set[str] = set()
    needles: set[str] = set()
    for tag, elem in ds._dict.items():
        vr = elem.VR
        if not vr or vr == "UN":
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                continue
        if vr == "PN":
            for part in _name_parts(_text(elem, encodings, _PN_DELIMITERS)):
                if part.isascii() and len(part) <= _SHORT_NAME:
                    words.add(part)
                else:
                    needles.add(part)
    held = [ds._dict.get(tag) for tag in _IDENTIFIERS]  # type: ignore[call-overload]
    held += _other_patient_ids(ds)
    for elem in held:
        if elem is not None:
            for value in _text(elem, encodings, _TEXT_DELIMITERS).split("\\"):
                flat = compact(value)
                if len(flat) >= _SHORTEST_IDENTIFIER:
                    needles.add(flat)
    if len(words) + len(needles) > _MOST_IDENTIFIERS:
        return Echo(encodings=encodings, overflow=True)
    return Echo(frozenset(words), tuple(sorted(needles)), encodings)


def _other_patient_ids(ds: Dataset) -> list[object]:
    """The Patient ID elements of the Other Patient IDs Sequence's items, read from a converted copy
    (converting the sequence in ``ds`` would turn the fast path away)."""
    elem = ds._dict.get(_OTHER_IDS_SEQUENCE)  # type: ignore[call-overload]
    if elem is None:
        return []
    try:
        sequence = convert_raw_data_element(elem) if isinstance(elem, RawDataElement) else elem
        return [item._dict.get(_PATIENT_ID) for item in sequence.value or ()]
    except Exception:  # a damaged sequence is the cleaners' to judge; its IDs are not looked for
        return []


def _name_parts(text: str) -> Iterable[str]:
    """Family, given and middle names of every value and group of a PN value, as words."""
    for value in text.split("\\"):
        for group in value.split("="):
            for component in group.split("^")[:3]:  # prefixes and suffixes (DR, MR, JR) are not names
                for word in _WORD.findall(component.upper()):
                    if len(word) >= _SHORTEST_NAME and not word.isdigit():
                        yield word


def _text(elem: object, encodings: tuple[str, ...], delimiters: set[int]) -> str:
    """An element's value as text ("" when it cannot be read)."""
    try:
        return _read_text(elem, encodings, delimiters)
    except _UNREADABLE:
        return ""


def _decoded(raw: bytes, encodings: tuple[str, ...], delimiters: set[int]) -> str:
    """Raw text bytes decoded with the character sets (ASCII directly: nearly every value)."""
    if raw.isascii():
        return raw.decode("ascii")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an undecodable byte is replaced: enough to compare
        return decode_bytes(raw, list(encodings), delimiters)


def _read_text(elem: object, encodings: tuple[str, ...], delimiters: set[int]) -> str:
    if isinstance(elem, RawDataElement):
        return _decoded(elem.value or b"", encodings, delimiters)
    value = getattr(elem, "value", None)
    if value is None:
        return ""
    if isinstance(value, str | bytes):
        return value.decode("latin-1") if isinstance(value, bytes) else value
    try:
        return "\\".join(str(v) for v in value)
    except TypeError:
        return str(value)


def _values(ds: Dataset, tag: int, default: tuple[str, ...]) -> tuple[str, ...]:
    elem = ds._dict.get(tag)  # type: ignore[call-overload]
    if elem is None:
        return default
    text = _text(elem, ("iso8859",), _TEXT_DELIMITERS).strip("\x00 ")
    return tuple(v.strip() for v in text.split("\\")) if text else default
