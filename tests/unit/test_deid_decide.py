"""The decision function: Table E.1-1 for what it names, the retention list (an allow-list) for the rest.

Through :class:`Cleaner` on datasets read back from real bytes (as in a run), and directly on
:func:`decide` for what the verdict says.
"""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.datadict import DicomDictionary, dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from cohortpool.deid.actions import Cleaner, Context
from cohortpool.deid.decide import (
    EMPTIED,
    KEEP,
    REMOVE,
    REMOVED,
    REPLACE,
    REPLACED,
    TEXT_VRS,
    Element,
    decide,
)
from cohortpool.deid.encode import encode_dataset
from cohortpool.deid.profile import load_profile
from cohortpool.deid.pseudonym import Pseudonymiser
from cohortpool.deid.uids import UidMapper

DEFAULT = ("clean_descriptors", "retain_long_modified_dates", "retain_patient_characteristics")
KEYS = Pseudonymiser(b"k", "site01")
UIDS = UidMapper(b"k")
PROFILE = load_profile(DEFAULT)
TEXT = sorted(TEXT_VRS - {"UN"})


def unlisted_tag(vr: str, skip: int = 0) -> int:
    """A standard attribute of ``vr`` that neither Table E.1-1 nor the retention list names (an even
    tag the dictionary does not know when none is left: still a standard group, still text)."""
    found = [
        (bool(retired), tag)  # current attributes first; retired ones where none is left (PN)
        for tag, (dict_vr, _, _, retired, _) in sorted(DicomDictionary.items())
        if dict_vr == vr
        and tag >> 16 not in (0x0000, 0x0002, 0x0004)
        and PROFILE.rule(tag) is None
        and tag not in PROFILE.retained
    ]
    if not found:  # every AE and AS attribute of the dictionary is a Table E.1-1 row: an unknown one
        return 0x00181F00 + 2 * sorted(TEXT_VRS | {"SQ"}).index(vr)
    return sorted(found)[skip][1]


def _clean(ds: Dataset, ts: str = ExplicitVRLittleEndian) -> tuple[Dataset, Cleaner]:
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    read = pydicom.dcmread(buffer)
    implicit = ts == ImplicitVRLittleEndian
    cleaner = Cleaner(PROFILE, KEYS, UIDS)
    cleaner.clean(read, Context(KEYS.patient_id("MRN1"), -10))
    data = encode_dataset(read, implicit, True)
    return pydicom.filereader.read_dataset(io.BytesIO(data), implicit, True), cleaner


def _value(vr: str, n: int) -> str:
    return (
        "TOKEN"
        if vr == "CS"
        else "001Y"
        if vr == "AS"
        else f"http://x{n}.example/"
        if vr == "UR"
        else f"tok{n}"
    )


@pytest.mark.parametrize("ts", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_an_unlisted_attribute_of_every_text_vr_is_removed_at_every_depth(ts: str) -> None:
    ds = Dataset()
    ds.Modality = "CT"
    inner = Dataset()
    for n, vr in enumerate(TEXT):
        ds.add_new(unlisted_tag(vr), vr, _value(vr, n))
        inner.add_new(unlisted_tag(vr), vr, _value(vr, n))
    deeper = Dataset()
    deeper.add_new(unlisted_tag("LO"), "LO", "deep")
    inner.AnatomicRegionSequence = Sequence([deeper])  # unlisted sequences are kept, cleaned inside
    ds.add_new(unlisted_tag("SQ"), "SQ", Sequence([inner]))
    out, cleaner = _clean(ds, ts)
    assert out.Modality == "CT"  # on the retention list
    for vr in TEXT:
        assert unlisted_tag(vr) not in out, vr
        assert unlisted_tag(vr) not in out[unlisted_tag("SQ")].value[0], vr
    assert unlisted_tag("LO") not in out[unlisted_tag("SQ")].value[0].AnatomicRegionSequence[0]
    counted = {(note, tag) for note, tag, _ in cleaner.unlisted}
    assert {(REMOVED, unlisted_tag(vr)) for vr in TEXT} <= counted
    assert cleaner.unlisted[(REMOVED, unlisted_tag("LO"), "LO")] == 3  # top, item, nested item


def test_listed_attributes_are_kept_emptied_or_dummied_as_the_list_says() -> None:
    ds = Dataset()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]  # K
    ds.Manufacturer = "Vendor Q"  # K (LO)
    ds.PositionReferenceIndicator = "behind Mrs Smith's ear"  # Z: Type 2, free text
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-D1100", "SRT", "Mr Smith"
    ds.AnatomicRegionSequence = Sequence([code])  # CodeMeaning: D
    out, cleaner = _clean(ds)
    assert list(out.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"] and out.Manufacturer == "Vendor Q"
    assert "PositionReferenceIndicator" in out and out.PositionReferenceIndicator in ("", None)
    item = out.AnatomicRegionSequence[0]
    assert (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning) == ("T-D1100", "SRT", "REMOVED")
    assert cleaner.unlisted[(EMPTIED, 0x00201040, "LO")] == 1
    assert cleaner.unlisted[(REPLACED, 0x00080104, "LO")] == 1


def test_a_listed_code_string_that_is_not_a_code_string_or_has_another_vr_is_removed() -> None:
    ds = Dataset()
    ds.add_new(0x00180015, "CS", "Smith John")  # BodyPartExamined with lower case: free text
    ds.add_new(0x00185100, "CS", "HFS")  # PatientPosition: a code string
    ds.add_new(0x00080070, "UT", "ACME")  # Manufacturer, listed as LO, written as UT
    out, cleaner = _clean(ds)
    assert "BodyPartExamined" not in out and "Manufacturer" not in out
    assert out.PatientPosition == "HFS"
    assert cleaner.unlisted[(REMOVED, 0x00180015, "CS")] == 1


def test_numbers_times_and_binary_values_the_table_does_not_name_are_kept_by_rule() -> None:
    ds = Dataset()
    numeric = {vr: unlisted_tag(vr) for vr in ("DS", "IS", "US", "FD", "TM")}
    for vr, tag in numeric.items():
        ds.add_new(tag, vr, "1.5" if vr == "DS" else "12" if vr == "IS" else "101010" if vr == "TM" else 7)
    ds.add_new(unlisted_tag("OB"), "OB", b"\x01\x02")
    out, cleaner = _clean(ds)
    assert all(tag in out for tag in numeric.values()) and unlisted_tag("OB") in out
    assert not cleaner.unlisted


def test_an_unknown_standard_attribute_is_removed_whatever_its_vr() -> None:
    ds = Dataset()
    ds.add_new(0x00181FFE, "LO", "unknown to the dictionary")  # even group, no dictionary entry
    ds.add_new(0x00181FFC, "UN", b"MRN12345")
    with pytest.raises(KeyError):
        dictionary_VR(0x00181FFE)
    out, _ = _clean(ds)
    assert 0x00181FFE not in out and 0x00181FFC not in out


def _policy():  # type: ignore[no-untyped-def]
    return Cleaner(PROFILE, KEYS, UIDS).policy


def test_the_verdict_is_a_pure_function_of_rule_element_and_policy() -> None:
    policy = _policy()
    element = Element(0x00080060, "CS", b"CT", top=True)
    first = decide(None, element, policy, "P1", -3)
    assert first == decide(None, element, policy, "P1", -3) and first.op == KEEP
    assert decide(None, Element(0x00080060, "CS", b"ct", top=True), policy, "P1", -3).op == REMOVE
    date = decide(PROFILE.rule(0x00080020), Element(0x00080020, "DA", b"20240301"), policy, "P1", -3)
    assert (date.op, date.values) == (REPLACE, ("20240227",))
    name = decide(PROFILE.rule(0x00100010), Element(0x00100010, "PN", b"Doe^Jane", top=True), policy, "P9", 0)
    assert (name.op, name.values) == (REPLACE, ("P9",))


def test_an_element_whose_vr_is_not_a_dicom_vr_is_removed_whatever_the_table_says() -> None:
    """A flipped bit in an explicit-VR header ('LT' -> 'MT') must not carry the value through: kept
    (or replaced under the old VR) it leaks, and pydicom cannot read the output back."""
    policy = _policy()
    for tag in (0x00204000, 0x00100020, 0x00080060, 0x00181FFE):  # comments, Patient ID, modality, unknown
        damaged = Element(tag, "MT", b"Doe^Jane MRN12345", top=True)
        verdict = decide(PROFILE.rule(tag), damaged, policy, "P1", 0)
        assert (verdict.op, verdict.note) == (REMOVE, REMOVED), hex(tag)
