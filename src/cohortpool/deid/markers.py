"""The attributes that say a file was de-identified, and how (PS3.15 E.1.1, PS3.3 C.7.1.1).

Every output records Patient Identity Removed, the De-identification Method (free text naming the
profile edition and options) and the De-identification Method Code Sequence with the CID 7050
codes of the Basic Profile and each option, plus Longitudinal Temporal Information Modified.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cohortpool.deid.profile import Profile

_LO_MAX = 64


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


def add_markers(ds: Dataset, profile: Profile, allow_burned_in: bool) -> None:
    """Write the de-identification attributes into a cleaned top-level dataset."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = method_text(profile, allow_burned_in)
    items = []
    for value, meaning in profile.code_values:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = temporal_state(profile)
