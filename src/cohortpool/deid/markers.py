"""The attributes that say a file was de-identified, and how (PS3.15 E.1.1, PS3.3 C.7.1.1).

Every output records Patient Identity Removed, the De-identification Method (free text naming the
profile edition and options) and the De-identification Method Code Sequence with the CID 7050
codes of the Basic Profile and each option, plus Longitudinal Temporal Information Modified.
"""

from __future__ import annotations

from functools import lru_cache

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from cohortpool.deid.encode import encode_dataset, raw_text
from cohortpool.deid.profile import Profile, load_profile

_LO_MAX = 64
#: PatientIdentityRemoved, DeidentificationMethod, its code sequence, LongitudinalTemporalInformationModified
MARKER_TAGS = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})


def method_text(profile: Profile, allow_burned_in: bool) -> list[str]:
    """De-identification Method values (LO, at most 64 characters each, so one value per fact)."""
    values = [f"cohortpool; {profile.edition} Table E.1-1"[:_LO_MAX], "Basic Profile"]
    values += [option.replace("_", " ") for option in profile.options]
    if allow_burned_in:
        values.append("burned-in annotation allowed by consortium")
    return values


def temporal_state(profile: Profile) -> str:
    """Longitudinal Temporal Information Modified (0028,0303): MODIFIED, UNMODIFIED or REMOVED."""
    if "retain_long_modified_dates" in profile.options:
        return "MODIFIED"
    if "retain_long_full_dates" in profile.options:
        return "UNMODIFIED"
    return "REMOVED"


@lru_cache(maxsize=16)
def marker_elements(
    options: tuple[str, ...], allow_burned_in: bool, implicit: bool, little: bool
) -> tuple[RawDataElement, ...]:
    """The marker elements, encoded once per worker and encoding (they are the same in every file)."""
    profile = load_profile(options)
    codes = Dataset()
    items = []
    for value, meaning in profile.code_values:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    codes.DeidentificationMethodCodeSequence = Sequence(items)
    # the encoder writes the sequence with undefined length; keep its items and drop the sequence
    # header (12 or 8 bytes) and delimiter (8) so the raw element can carry a defined length
    sequence = encode_dataset(codes, implicit, little)[(8 if implicit else 12) : -8]
    return (
        raw_text(0x00120062, "CS", "YES"),
        raw_text(0x00120063, "LO", method_text(profile, allow_burned_in)),
        RawDataElement(BaseTag(0x00120064), "SQ", len(sequence), sequence, 0, implicit, little),
        raw_text(0x00280303, "CS", temporal_state(profile)),
    )


def add_markers(ds: Dataset, profile: Profile, allow_burned_in: bool, implicit: bool, little: bool) -> None:
    """Write the de-identification attributes into a cleaned top-level dataset (as raw elements,
    so an input's own values for these tags are replaced, never copied)."""
    for element in marker_elements(profile.options, allow_burned_in, implicit, little):
        ds[element.tag] = element
