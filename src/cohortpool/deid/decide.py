"""One decision per data element: what the profile, the retention list and the options do with it.

:func:`decide` is the only place a de-identification rule becomes an action on an element. Both
cleaners call it, element by element: :class:`cohortpool.deid.actions.Cleaner` on pydicom datasets and
:class:`cohortpool.deid.fastpath.FastPath` on raw bytes. They differ only in how they apply a
:class:`Verdict` (delete from a dataset or leave out of the output bytes, and so on), so the two
cannot disagree on what leaves the site (``tests/unit/test_deid_fastpath.py`` still checks their
outputs byte for byte).

The decision, in order:

1. Patient ID, Patient's Name and Accession Number carry the keyed pseudonyms (PS3.15 gives them
   ``Z``/``D``; we fill the dummy with the pseudonym so the instances of a patient stay linked).
2. An attribute Table E.1-1 names gets its resolved action (``D``, ``Z``, ``X``, ``K``, ``C``, ``U``
   and the combined codes; see :mod:`cohortpool.deid.actions` for how a combined code is chosen).
   A clean (``C``) that cannot keep the value falls back to the Basic Profile's action.
3. An attribute the table does not name (**the allow-list**):

   - a sequence is kept and cleaned inside, item by item, at every depth;
   - a UID is replaced unless the standard defines it (a well-formed UID under ``1.2.840.10008.``;
     an instance UID the table names is replaced unless the standard registers it, under that root
     too);
   - a date or date-time is treated like the dates the table names (shifted with the patient's
     offset, kept under full dates, else removed): an unshifted date would give the offset away;
   - a value of a VR that can carry text (AE, AS, CS, LO, LT, PN, SH, ST, UC, UR, UT, and UN,
     whose content nobody can know) is kept **only** when the reviewed retention list
     (``data/retention_list.csv``) names the attribute with that VR, and for CS and AS only when the
     value has that VR's form (code-string characters; an age); a listed attribute an IOD requires
     without a meaningful value is emptied (``Z``, Type 2) or given a dummy (``D``, Type 1);
     everything else is removed, and counted by keyword for the ledger summary;
   - numbers (DS, IS, US, SS, UL, SL, FL, FD, SV, UV, AT), times (TM) and binary values (OB, OW,
     OF, OD, OL, OV) are kept, by rule: they carry measurements, pixel and lookup-table data, not
     names, and the table names every numeric or binary attribute that identifies (device serial
     numbers are text, overlays and curves are named by group).

   Overlay groups (60xx) are removed whole, whatever the table says of their elements: the table
   removes their data (60xx,3000), and an overlay plane without its data is invalid.
4. Text any of the above keeps (every text VR but AS, attributes with enumerated values aside) is
   compared with the file's own person names and identifiers (:mod:`cohortpool.deid.echo`): a value
   that repeats one, or is written as a person name, gets the VR's dummy. Such a verdict reads the
   value, so it is decided again for every file.

The function is pure: the same rule, element, policy and context give the same verdict, with no
side effects (the UID mapper and the pseudonymiser are keyed hashes, memoised).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

from pydicom.datadict import dictionary_VR
from pydicom.multival import MultiValue

from cohortpool.contract.dicom_terms import CHARACTER_SETS, MODALITIES
from cohortpool.deid.echo import NO_ECHO, Echo
from cohortpool.deid.profile import Retained, Rule
from cohortpool.deid.pseudonym import Pseudonymiser, shift_da, shift_dt
from cohortpool.deid.uids import is_well_known

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
ACCESSION_NUMBER = 0x00080050
IDENTITY = frozenset({PATIENT_NAME, PATIENT_ID, ACCESSION_NUMBER})
#: VRs whose values can hold free text (PS3.5 Table 6.2-1), plus UN: unknown content
TEXT_VRS = frozenset({"AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT", "UN"})
#: the VRs of PS3.5 Table 6.2-1: an element carrying any other two letters was damaged in transit or
#: written by a broken encoder; what it holds cannot be judged, and pydicom cannot read it back
DICOM_VRS = frozenset({
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV",
    "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV",
})  # fmt: skip
STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
#: the rule of a date the table does not name: cleaned as a date, removed when it cannot be
UNLISTED_DATE = Rule(tag="", keyword="", action="C", basic="X")
DUMMY_TEXT = "REMOVED"
DUMMIES: dict[str, str] = {
    "AE": DUMMY_TEXT,
    "AS": "000Y",
    "CS": DUMMY_TEXT,
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": DUMMY_TEXT,
    "LT": DUMMY_TEXT,
    "PN": DUMMY_TEXT,
    "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT,
    "TM": "000000",
    "UC": DUMMY_TEXT,
    "UR": "",
    "UT": DUMMY_TEXT,
}
#: the form a kept value of these VRs must have (PS3.5 Table 6.2-1): code strings are upper-case
#: letters, digits, space and underscore, 16 at most; ages three digits and a unit; decimal and
#: integer strings numbers; times ``HHMMSS.FFFFFF`` (or ACR-NEMA's ``HH:MM:SS``). A value without its
#: VR's form is text typed where a code or a number belongs, and is not kept.
_FORMS: dict[str, re.Pattern[str]] = {
    "CS": re.compile(r"[A-Z0-9 _]{0,16}"),
    "AS": re.compile(r"([0-9]{3}[DWMY])?"),
    "DS": re.compile(r" *([+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?)? *"),
    "IS": re.compile(r" *([+-]?[0-9]+)? *"),
    "TM": re.compile(r" *([0-9]{2}(:?[0-9]{2}(:?[0-9]{2}(\.[0-9]{1,6})?)?)?)? *"),
}
#: the values an attribute may have where the standard enumerates them (the retention list's Specific
#: Character Set and Modality, :mod:`cohortpool.contract.dicom_terms`; the patient characteristics the
#: Retain Patient Characteristics option keeps, PS3.3 C.7.1.1 Patient Sex and Patient Sex Neutered,
#: C.7.2.2 Smoking Status); anything else typed there is removed (as the Basic Profile would, for a
#: characteristic)
_ENUMERATED: dict[int, frozenset[str]] = {
    0x00080005: CHARACTER_SETS,
    0x00080060: MODALITIES,
    0x00100040: frozenset({"M", "F", "O"}),
    0x00102203: frozenset({"ALTERED", "UNALTERED"}),
    0x001021A0: frozenset({"YES", "NO", "UNKNOWN"}),
}
#: free-text VRs, and the patient characteristic of that kind the option keeps (Ethnic Group): kept
#: only when worded like a descriptor (every word on the vocabulary), as Clean Descriptors keeps text
_FREE_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
_FREE_TEXT_CHARACTERISTICS = frozenset({0x00102160})
#: VRs whose bytes cannot be judged: a value of an attribute the dictionary does not know goes
_OPAQUE_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_WORDS = re.compile(r"[^A-Za-z0-9]+")

# -- verdict operations ----------------------------------------------------------------------------
REMOVE = "remove"  #: leave the element out
KEEP = "keep"  #: copy the element as it is
DESCEND = "descend"  #: keep the sequence, clean each item
EMPTY = "empty"  #: zero length (a sequence: no items)
ZERO = "zero"  #: a binary dummy: zeros of the VR's width
REPLACE = "replace"  #: new text values (``Verdict.values``)
DROP_GROUP = "drop_group"  #: remove the whole overlay group this element belongs to

# -- why an attribute the table does not name lost its value (ledger summary) ----------------------
REMOVED = "removed"
EMPTIED = "emptied"
REPLACED = "replaced"
#: a kept text value that repeated one of the file's identifiers (:mod:`cohortpool.deid.echo`)
ECHOED = "identifier echoed"
#: a kept text value written as a person name (``FAMILY^GIVEN``)
NAME_FORM = "person name form"
#: the text VRs whose kept values are compared with the file's identifiers (not AS, an age, nor PN and
#: UN, which are never kept as they are)
_ECHO_VRS = frozenset({"AE", "CS", "LO", "LT", "SH", "ST", "UC", "UR", "UT"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one element; ``note`` says why when the retention list decided (else empty).

    ``static`` is true when the verdict did not depend on the element's value or the file's patient:
    every element of that tag and VR gets the same one under this policy, so a cleaner may reuse it
    for the next such element instead of asking again (both cleaners do; the verdict is the same).
    """

    op: str
    values: tuple[str, ...] = ()
    note: str = ""
    static: bool = False


_REMOVE = Verdict(REMOVE, static=True)
_KEEP = Verdict(KEEP, static=True)
_DESCEND = Verdict(DESCEND, static=True)
_EMPTY = Verdict(EMPTY, static=True)
_ZERO = Verdict(ZERO, static=True)
_DROP_GROUP = Verdict(DROP_GROUP, static=True)
_UNLISTED_REMOVED = Verdict(REMOVE, note=REMOVED, static=True)
_UNLISTED_EMPTIED = Verdict(EMPTY, note=EMPTIED, static=True)
_KEEP_READ = Verdict(KEEP)


class Reuse(NamedTuple):
    """A static verdict remembered for a tag, with the VR it was decided for."""

    vr: str
    verdict: Verdict


def _read(verdict: Verdict) -> Verdict:
    """``verdict`` reached by reading the value: never reused for another element."""
    if not verdict.static:
        return verdict
    return Verdict(verdict.op, verdict.values, verdict.note, static=False)


_RAW: Any = object()


def raw_ascii_values(raw: bytes) -> list[str]:
    """The values of an ASCII-only element (UI, DA, DT, CS...) from its raw value bytes."""
    text = raw.decode("ascii", "replace").rstrip("\x00 ")
    return [v.strip().rstrip("\x00") for v in text.split("\\")] if text else []


def words_allowed(text: str, vocabulary: frozenset[str]) -> bool:
    """``text`` is plain ASCII and every word (run of letters and digits) of it is on the vocabulary.

    Anything outside ASCII fails whole: splitting words on non-alphanumerics would otherwise treat
    a decoded CJK or accented name as a separator and keep it between vocabulary words.
    """
    return text.isascii() and all(w in vocabulary for w in _WORDS.split(text.upper()) if w)


def raw_text_allowed(raw: bytes, vocabulary: frozenset[str]) -> bool:
    """:func:`words_allowed` of raw value bytes (a value holding ISO 2022 escapes cannot pass)."""
    if b"\x1b" in raw:
        return False
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return False
    return words_allowed(text, vocabulary)


class NotPlainText(Exception):
    """A raw text value whose reading depends on the character set (the caller decodes it first)."""


class Element:
    """One data element as a cleaner holds it: its value raw (bytes as stored) or converted by pydicom.

    Parameters
    ----------
    tag, vr
        The tag and the VR the decision uses (the dictionary's when the file gives none or ``UN``).
    raw
        The value bytes, when the element is still raw.
    converted
        The value pydicom has converted (used when ``raw`` is ``None``).
    top
        The element is in the top-level data set (not in a sequence item).
    """

    __slots__ = ("converted", "raw", "tag", "top", "vr")

    def __init__(
        self, tag: int, vr: str, raw: bytes | None, converted: Any = _RAW, top: bool = False
    ) -> None:
        self.tag = tag
        self.vr = vr
        self.raw = raw
        self.converted = converted
        self.top = top

    def ascii_values(self) -> list[str]:
        """The values of an ASCII-only VR (UI, DA, DT, CS, AS)."""
        if self.converted is _RAW:
            return raw_ascii_values(self.raw or b"")
        value = self.converted
        if value is None or value == "":
            return []
        return [str(value)] if isinstance(value, str) else [str(v) for v in value]

    def words_allowed(self, vocabulary: frozenset[str]) -> bool:
        """Every word of every value is on the vocabulary (Clean Descriptors)."""
        if self.converted is _RAW:
            return raw_text_allowed(self.raw or b"", vocabulary)
        return words_allowed(self._converted_text(), vocabulary)

    def decoded(self, echo: Echo) -> str | None:
        """The value as text (raw bytes read with the file's character sets; ``None``: they cannot be)."""
        if self.converted is _RAW:
            return echo.decode(self.raw or b"")
        return self._converted_text()

    def _converted_text(self) -> str:
        """A converted value as text, multiple values joined with the DICOM delimiter."""
        value = self.converted if self.converted is not None else ""
        return "\\".join(map(str, value)) if isinstance(value, list | tuple | MultiValue) else str(value)

    def text(self) -> str:
        """The whole value as text, stripped (identifiers).

        Raises
        ------
        NotPlainText
            The value is raw and not plain ASCII (its reading needs the character set).
        """
        if self.converted is not _RAW:
            return str(self.converted or "").strip()
        value = (self.raw or b"").rstrip(b"\x00 ")
        if any(b < 0x20 or b > 0x7E for b in value) or b"\\" in value:
            raise NotPlainText("identifier is not plain ASCII")
        return value.decode("ascii").strip()


@dataclass(frozen=True)
class Policy:
    """What the decision needs beyond the rule: options, vocabulary, retention list and keys."""

    shift_dates: bool
    keep_dates: bool
    vocabulary: frozenset[str]
    retained: dict[int, Retained]
    pseudonyms: Pseudonymiser = field(repr=False)
    map_uid: Callable[[str], str] = field(repr=False)


def decide(
    rule: Rule | None,
    element: Element,
    policy: Policy,
    patient_id: str,
    shift_days: int,
    echo: Echo = NO_ECHO,
) -> Verdict:
    """The verdict for ``element`` under ``rule`` (``None``: Table E.1-1 does not name the attribute).

    ``patient_id`` and ``shift_days`` are the file's patient pseudonym and keyed date offset, ``echo``
    its identifiers. Private elements, group lengths and trailing padding never reach here: the
    cleaners remove them outright.
    """
    verdict = _decide(rule, element, policy, patient_id, shift_days)
    if verdict.op != KEEP or element.vr not in _ECHO_VRS or element.tag in _ENUMERATED:
        return verdict
    # kept text: never reused for another file (whose identifiers differ), and not kept when it
    # repeats one of this file's (a value that cannot be decoded cannot show it does not), or is
    # written as a person name (unless every word is a descriptor's: SPINE^LUMBAR names nobody)
    text = element.decoded(echo)
    if text is None or echo.heard_in(text):
        return Verdict(REPLACE, (DUMMIES[element.vr],), ECHOED)
    if "^" in text and not words_allowed(text, policy.vocabulary):
        return Verdict(REPLACE, (DUMMIES[element.vr],), NAME_FORM)
    return _read(verdict)


def _decide(rule: Rule | None, element: Element, policy: Policy, patient_id: str, shift_days: int) -> Verdict:
    tag = element.tag
    if element.vr not in DICOM_VRS:
        return _UNLISTED_REMOVED  # a damaged element goes whatever the table says (counted as removed)
    if not fits_dictionary(tag, element.vr):
        # text written under another VR (a code string as OB) would escape every check of its VR
        return _UNLISTED_REMOVED
    if tag in IDENTITY:
        return _identity(element, policy, patient_id)
    if 0x6000 <= tag >> 16 <= 0x601E and (rule is None or rule.action != "K"):
        # an overlay plane goes whole: its data is removed, and a plane without it is invalid
        return _DROP_GROUP
    if rule is None:
        return _unlisted(element, policy, shift_days)
    return _act(rule.action, rule, element, policy, shift_days)


def _identity(element: Element, policy: Policy, patient_id: str) -> Verdict:
    """Patient ID and Name (top level) become the patient pseudonym; an accession number at any depth
    its 16-hex keyed digest (the manifest's ``accession_id`` without its ``A``); another patient's ID
    in a nested item its own pseudonym; a nested name is emptied."""
    tag = element.tag
    if tag == ACCESSION_NUMBER:
        text = element.text()
        return Verdict(REPLACE, (policy.pseudonyms.accession_digest(text) if text else "",))
    if element.top:
        return Verdict(REPLACE, (patient_id,))
    if tag == PATIENT_ID:
        text = element.text()
        if text:
            return Verdict(REPLACE, (policy.pseudonyms.patient_id(text),))
    return Verdict(REPLACE, ("",))


def _unlisted(element: Element, policy: Policy, shift_days: int) -> Verdict:
    vr = element.vr
    if vr == "SQ":
        return _DESCEND
    if vr == "UI":
        values = element.ascii_values()
        if any(not is_well_known(v) for v in values if v):
            return Verdict(REPLACE, tuple(policy.map_uid(v) for v in values))
        return _KEEP_READ
    if vr in ("DA", "DT"):
        return _dates(UNLISTED_DATE, element, policy, shift_days)
    if vr not in TEXT_VRS:
        # numbers, times and binary values: kept by rule (module docstring), when they are numbers and times
        if vr in _FORMS:
            return _KEEP_READ if well_formed(element) else _read(_UNLISTED_REMOVED)
        return _KEEP
    retained = policy.retained.get(element.tag)
    if retained is None or retained.vr != vr:
        return _UNLISTED_REMOVED
    if retained.action == "Z":
        return _UNLISTED_EMPTIED
    if retained.action == "D":
        return Verdict(REPLACE, (DUMMIES[vr],), REPLACED, static=True)
    enumerated = _ENUMERATED.get(element.tag)
    if enumerated is not None:
        if all(v in enumerated for v in element.ascii_values()):
            return _KEEP_READ
        return _read(_UNLISTED_REMOVED)  # a code string, but not one the standard defines there
    if vr not in _FORMS:
        return _KEEP
    if not well_formed(element):
        return _read(_UNLISTED_REMOVED)  # not a code string (or an age): free text in a coded attribute
    return _KEEP_READ


def well_formed(element: Element) -> bool:
    """Every value of ``element`` has its VR's form (:data:`_FORMS`; true for a VR without one)."""
    form = _FORMS.get(element.vr)
    return form is None or all(form.fullmatch(v) for v in element.ascii_values())


@cache
def fits_dictionary(tag: int, vr: str) -> bool:
    """``vr`` is one the data dictionary gives ``tag`` (``US or SS`` gives two); an attribute the
    dictionary does not know fits unless its VR is opaque bytes, which nothing can judge."""
    try:
        known = dictionary_VR(tag)
    except KeyError:
        return vr not in _OPAQUE_VRS
    return vr in known.split(" or ")


def _kept(rule: Rule, element: Element, policy: Policy, shift_days: int) -> Verdict:
    """What ``K`` keeps: the value, when it has its VR's form, is one of the attribute's enumerated
    values, and (free text) is worded like a descriptor; else what the Basic Profile does."""
    vr = element.vr
    if vr in ("DA", "DT"):
        return _dates(rule, element, policy, shift_days, keep=True)
    enumerated = _ENUMERATED.get(element.tag)
    if enumerated is not None:
        if all(v in enumerated for v in element.ascii_values()):
            return _KEEP_READ
        return _read(_fallback(rule, element, policy, shift_days))
    if vr in _FREE_TEXT_VRS and element.tag in _FREE_TEXT_CHARACTERISTICS:
        if element.words_allowed(policy.vocabulary):
            return _KEEP_READ
        return _read(_fallback(rule, element, policy, shift_days))
    if vr in _FORMS:
        if well_formed(element):
            return _KEEP_READ
        return _read(_fallback(rule, element, policy, shift_days))
    return _KEEP


def _act(action: str, rule: Rule, element: Element, policy: Policy, shift_days: int) -> Verdict:
    """The verdict of one Table E.1-1 action (combined codes chosen as :mod:`.actions` explains)."""
    vr = element.vr
    if action == "X":
        return _REMOVE
    if action in ("Z", "X/Z"):
        return _EMPTY
    if action in ("D", "X/D", "X/Z/D", "Z/D"):
        if vr == "SQ":
            return _DESCEND  # a dummy sequence is the original one with every item cleaned
        if vr == "UI":
            return _act("U", rule, element, policy, shift_days)
        if vr in ("DA", "DT") and (policy.shift_dates or policy.keep_dates):
            # a date that cannot be shifted gets the dummy (asking the fallback again would loop)
            return _dates(rule, element, policy, shift_days, unusable=Verdict(REPLACE, (DUMMIES[vr],)))
        if vr in DUMMIES:
            return Verdict(REPLACE, (DUMMIES[vr],), static=True)
        return _ZERO  # binary VRs: zeros (OB, OW, UN...: empty, which keeps the attribute present)
    if action == "K":
        return _DESCEND if vr == "SQ" else _kept(rule, element, policy, shift_days)
    if action == "C":
        if vr == "SQ":
            return _DESCEND
        if vr in ("DA", "DT"):
            return _dates(rule, element, policy, shift_days)
        if vr == "TM":
            # whole-day shifts leave times unchanged (PS3.15 E.3.6 allows keeping times): times only
            return _KEEP_READ if well_formed(element) else _read(_fallback(rule, element, policy, shift_days))
        if vr == "UI":
            return _act("U", rule, element, policy, shift_days)
        if vr in STRING_VRS and vr != "PN":
            if element.words_allowed(policy.vocabulary):
                return _KEEP_READ
            return _read(_fallback(rule, element, policy, shift_days))
        if vr in ("PN", "UN", "OB", "OW"):
            return _fallback(rule, element, policy, shift_days)
        if vr in _FORMS and not well_formed(element):
            return _read(_fallback(rule, element, policy, shift_days))  # text where a number belongs
        return _KEEP_READ if vr in _FORMS else _KEEP  # numeric VRs carry measurements, not identities
    if action in ("U", "X/Z/U*"):
        if vr == "SQ":
            return _DESCEND
        if vr != "UI":
            return _fallback(rule, element, policy, shift_days)
        return Verdict(REPLACE, tuple(policy.map_uid(v) for v in element.ascii_values()))
    raise ValueError(f"action {action!r} of {rule.keyword or rule.tag} is not a Table E.1-1 action")


def _fallback(rule: Rule, element: Element, policy: Policy, shift_days: int) -> Verdict:
    """What the Basic Profile does when a clean (``C``) cannot keep the value."""
    action = rule.basic if rule.basic not in ("C", "K") else "X"
    return _act(action, rule, element, policy, shift_days)


def _dates(
    rule: Rule,
    element: Element,
    policy: Policy,
    shift_days: int,
    unusable: Verdict | None = None,
    keep: bool = False,
) -> Verdict:
    """A date or date-time kept (full dates, or ``keep``) or shifted by the patient's offset; one that
    is not a date (text, a month alone) gets ``unusable``, by default what the Basic Profile does."""
    if not (policy.keep_dates or policy.shift_dates or keep):
        return _fallback(rule, element, policy, shift_days)
    shift = shift_da if element.vr == "DA" else shift_dt
    days = 0 if policy.keep_dates or keep else shift_days
    shifted = [shift(v, days) for v in element.ascii_values() if v.strip()]
    if any(s is None for s in shifted):
        return _read(unusable if unusable is not None else _fallback(rule, element, policy, shift_days))
    if days == 0:
        return _KEEP_READ  # kept as written (a legacy ``YYYY.MM.DD`` too): it is a date
    return Verdict(REPLACE, tuple(s for s in shifted if s is not None))
