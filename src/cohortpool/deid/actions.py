"""Apply a resolved profile to a pydicom dataset, recursively, in place.

Action codes (PS3.15 E.1.1): ``D`` dummy value, ``Z`` zero length (or a dummy), ``X`` remove,
``K`` keep (sequences are still cleaned inside), ``C`` clean (values of similar meaning without
identifying information), ``U`` replace UIDs consistently. Combined codes (``X/Z``, ``X/D``,
``X/Z/D``, ``Z/D``, ``X/Z/U*``) let the implementation choose by the attribute's type in the IOD;
we do not carry the IODs, so we choose the variant that is conformant for every type: ``Z`` for
``X/Z`` (empty is allowed for Type 2 and 3), ``D`` for anything containing ``D`` (a value is allowed
for Type 1, 2 and 3) and ``U`` for ``X/Z/U*`` (keep the reference sequence, replace its UIDs).

What happens to each element is decided by :func:`cohortpool.deid.decide.decide` (shared with the
raw-bytes fast path); this module applies the verdicts to a pydicom dataset. Beyond the table,
deliberately stricter than the Basic Profile:

- private attributes are removed unless the Retain Safe Private option keeps a listed one;
- an attribute the table does not name keeps a text value only when the reviewed retention list names
  it (an allow-list, :mod:`cohortpool.deid.decide`); UIDs it does not name are replaced unless the
  standard defines them; dates and date-times it does not name are shifted like the ones it names;
- whole overlay groups (60xx) go when their data goes (an overlay plane without data is invalid),
  and curves (50xx), group lengths and trailing padding (FFFC,FFFC) are removed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import PIXEL_KEYWORDS, Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from cohortpool.deid.decide import (
    DESCEND,
    DICOM_VRS,
    DROP_GROUP,
    EMPTY,
    IDENTITY,
    KEEP,
    REMOVE,
    REPLACE,
    Element,
    Policy,
    Reuse,
    decide,
)
from cohortpool.deid.echo import NO_ECHO, Echo
from cohortpool.deid.encode import raw_text, raw_zero
from cohortpool.deid.profile import Profile
from cohortpool.deid.pseudonym import Pseudonymiser
from cohortpool.deid.uids import UidMapper

SPECIFIC_CHARACTER_SET = 0x00080005
TRAILING_PADDING = 0xFFFCFFFC


@lru_cache(maxsize=4096)
def dictionary_vr(tag: int) -> str:
    """The data dictionary's VR of a tag (the first of alternatives), ``UN`` when unknown."""
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"


def element_vr(ds: Dataset, tag: int) -> str:
    """The VR of an element without converting its value (implicit VR files carry none)."""
    elem = ds.get_item(tag)
    vr = elem.VR if elem is not None else None
    if vr and vr != "UN":
        return str(vr)
    return dictionary_vr(tag)


def ascii_values(ds: Dataset, tag: int) -> list[str]:
    """The values of a UI, DA, DT (ASCII-only VRs) element, read from raw bytes when still raw."""
    elem = ds.get_item(tag)
    if elem is None:
        return []
    return _element(tag, "UI", elem, False).ascii_values()


def _element(tag: int, vr: str, elem: DataElement | RawDataElement, top: bool) -> Element:
    if isinstance(elem, RawDataElement):
        return Element(tag, vr, elem.value or b"", top=top)
    return Element(tag, vr, None, elem.value, top)


@dataclass(frozen=True, slots=True)
class Context:
    """What the cleaner needs for one file: its patient's pseudonym and date shift, and its identifiers
    (kept text must not repeat them)."""

    patient_id: str
    shift_days: int
    echo: Echo = field(default=NO_ECHO)


class Cleaner:
    """Applies a :class:`Profile` to datasets; one per worker process.

    Parameters
    ----------
    profile
        The resolved profile.
    pseudonymiser
        Keyed patient/accession pseudonyms and date shifts of the site.
    uids
        The keyed UID mapper.
    """

    def __init__(self, profile: Profile, pseudonymiser: Pseudonymiser, uids: UidMapper) -> None:
        self.profile = profile
        self.pseudonymiser = pseudonymiser
        self.uids = uids
        self.shift_dates = "retain_long_modified_dates" in profile.options
        self.keep_dates = "retain_long_full_dates" in profile.options
        self.safe_private = "retain_safe_private" in profile.options
        self.policy = Policy(
            shift_dates=self.shift_dates,
            keep_dates=self.keep_dates,
            vocabulary=profile.vocabulary,
            retained=profile.retained,
            pseudonyms=pseudonymiser,
            map_uid=uids.map,
        )
        #: tag -> the VR and verdict decide() gave it without reading a value (``Verdict.static``)
        self._static: dict[int, Reuse] = {}
        self._top: Dataset | None = None
        self.replaced: set[int] = set()
        #: (note, tag, VR) -> occurrences of attributes the retention list removed, emptied or replaced
        self.unlisted: Counter[tuple[str, int, str]] = Counter()

    # -- traversal -------------------------------------------------------------------------------
    def _set(self, ds: Dataset, tag: int, elem: DataElement | RawDataElement) -> None:
        """Replace an element, remembering which top-level tags were replaced (see ``replaced``).

        A raw replacement of a standard, non-pixel element goes straight into pydicom's element
        store: that is all ``Dataset.__setitem__`` does for one after its checks (private-creator
        lookup, pixel cache reset, sequence wrapping), which cost a fifth of the cleaning time.
        """
        if isinstance(elem, RawDataElement) and not (tag >> 16) & 1 and tag not in PIXEL_KEYWORDS:
            ds._dict[BaseTag(tag)] = elem
        else:
            ds[tag] = elem
        if ds is self._top:
            self.replaced.add(tag)

    def clean(self, ds: Dataset, ctx: Context, top: bool = True) -> None:
        """Clean ``ds`` in place, descending into every sequence item.

        After a top-level call, ``self.replaced`` holds the top-level tags given new values: the
        encoder must not fall back to their original bytes, and ``self.unlisted`` counts what the
        retention list took away.
        """
        if top:
            self._top = ds
            self.replaced = set()
            self.unlisted = Counter()
        private_tags = []
        overlay_groups: set[int] = set()
        exact, rule_of, policy, static = self.profile.exact, self.profile.rule, self.policy, self._static
        for tag, elem in list(ds._dict.items()):  # pydicom's element store: no value conversion
            t = int(tag)
            group = t >> 16
            if group & 1:
                private_tags.append(t)
                continue
            if t & 0xFFFF == 0 or t == TRAILING_PADDING:
                del ds[t]
                continue
            vr = elem.VR
            if not vr or vr == "UN":
                vr = dictionary_vr(t)
            cached = static.get(t)
            if cached is not None and cached.vr == vr:
                verdict = cached.verdict
            else:
                # identifiers are read decoded, with the data set's character set
                element = (
                    Element(t, vr, None, ds[t].value, top)
                    if t in IDENTITY and vr in DICOM_VRS
                    else _element(t, vr, elem, top)
                )
                verdict = decide(
                    exact.get(t) or rule_of(t), element, policy, ctx.patient_id, ctx.shift_days, ctx.echo
                )
                if verdict.static:
                    static[t] = Reuse(vr, verdict)
            if verdict.note:
                self.unlisted[(verdict.note, t, vr)] += 1
            op = verdict.op
            if op == KEEP:
                continue
            if op == REMOVE:
                del ds[t]
            elif op == REPLACE:
                self._set(ds, t, raw_text(t, vr, list(verdict.values)))
            elif op == DESCEND:
                self._items(ds, t, ctx)
            elif op == EMPTY:
                if vr == "SQ":
                    self._set(ds, t, DataElement(t, "SQ", Sequence()))
                else:
                    self._set(ds, t, RawDataElement(BaseTag(t), vr, 0, b"", 0, False, True))
            elif op == DROP_GROUP:
                overlay_groups.add(group)
            else:  # ZERO
                self._set(ds, t, raw_zero(t, vr))
        if private_tags:
            self._private(ds, private_tags, ctx)
        for group in overlay_groups:
            for old in [int(k) for k in ds.keys() if int(k) >> 16 == group]:  # noqa: SIM118
                del ds[old]

    def keeps(self, ds: Dataset, tag: int, ctx: Context) -> bool:
        """Whether cleaning ``ds`` (a top-level data set) keeps the element ``tag`` as it is.

        The decision :meth:`clean` and the fast path take (:func:`cohortpool.deid.decide.decide`), asked
        without changing ``ds``: what else reads the header (the imaging manifest) may release a value
        only when the de-identified file keeps it. Identities, private elements and group lengths are
        never kept as they are.
        """
        elem = ds._dict.get(BaseTag(tag))
        if elem is None or tag in IDENTITY or (tag >> 16) & 1 or tag & 0xFFFF == 0:
            return False
        vr = elem.VR
        if not vr or vr == "UN":
            vr = dictionary_vr(tag)
        rule = self.profile.exact.get(tag) or self.profile.rule(tag)
        element = _element(tag, vr, elem, True)
        verdict = decide(rule, element, self.policy, ctx.patient_id, ctx.shift_days, ctx.echo)
        return verdict.op == KEEP

    def _items(self, ds: Dataset, tag: int, ctx: Context) -> None:
        seq = ds[tag].value
        if isinstance(seq, Sequence):
            for item in seq:
                self.clean(item, ctx, top=False)

    def _private(self, ds: Dataset, tags: list[int], ctx: Context) -> None:
        """Remove private attributes, or keep those on the safe-private list when that option is on."""
        keep: set[int] = set()
        if self.safe_private:
            creators = {}
            for t in tags:
                if 0x0010 <= t & 0xFFFF <= 0x00FF:
                    creators[(t >> 16, t & 0xFF)] = str(ds[t].value).strip()
            for t in tags:
                elem = t & 0xFFFF
                if elem < 0x1000:
                    continue
                creator = creators.get((t >> 16, elem >> 8))
                if creator and (t >> 16, elem & 0xFF, creator) in self.profile.safe_private:
                    keep.add(t)
                    keep.add((t & 0xFFFF0000) | (elem >> 8))
        for t in tags:
            if t not in keep:
                del ds[t]
            elif element_vr(ds, t) == "SQ":
                self._items(ds, t, ctx)
