"""A kept text value that repeats the file's own identifiers does not leave the site, and equipment
text that merely shares letters with them does.

:func:`cohortpool.deid.echo.echo_of` reads the identifiers from a data set read back from real bytes
(raw elements, as both cleaners see them); :func:`cohortpool.deid.decide.decide` is asked about kept
attributes of the retention list, through :class:`Cleaner` so that the verdict reaches the file.
"""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from cohortpool.deid.actions import Cleaner, Context
from cohortpool.deid.echo import NO_ECHO, echo_of
from cohortpool.deid.profile import load_profile
from cohortpool.deid.pseudonym import Pseudonymiser
from cohortpool.deid.uids import UidMapper

DEFAULT = ("clean_descriptors", "retain_long_modified_dates", "retain_patient_characteristics")
KEYS = Pseudonymiser(b"k", "site01")
UIDS = UidMapper(b"k")


def _read_back(ds: Dataset) -> Dataset:
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def _patient(**attributes: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = attributes.pop("SpecificCharacterSet", "ISO_IR 100")
    ds.PatientName = attributes.pop("PatientName", "Li^Wen^Q^Dr^Jr")
    ds.PatientID = attributes.pop("PatientID", "MRN-40417")
    ds.AccessionNumber = "A77"  # shorter than 4: ignored (it would match frame numbers)
    ds.PatientBirthDate = "19580312"
    ds.OperatorsName = "Kowalczykowa^Anna"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _cleaned(ds: Dataset) -> Dataset:
    read = _read_back(ds)
    ctx = Context(KEYS.patient_id("MRN1"), -10, echo_of(read))
    Cleaner(load_profile(DEFAULT), KEYS, UIDS).clean(read, ctx)
    return read


@pytest.mark.parametrize(
    ("keyword", "typed"),
    [
        ("Manufacturer", "WEN Medical"),  # a short name part as a word
        ("Manufacturer", "Kowalczykowa Medical"),  # another person the file names (the operator)
        ("ManufacturerModelName", "CT MRN40417"),  # the record number without its hyphen
        ("SoftwareVersions", "build 1958-03-12"),  # the birth date with separators
        ("SequenceName", "*kowalczykowaT2"),  # a long name part inside a word
        ("BodyPartExamined", "WEN"),  # a code string with a name's form
    ],
)
def test_kept_text_repeating_an_identifier_of_the_file_gets_the_dummy(keyword: str, typed: str) -> None:
    cleaned = _cleaned(_patient(**{keyword: typed}))
    assert cleaned[keyword].value == "REMOVED"


@pytest.mark.parametrize(
    ("keyword", "typed"),
    [
        ("Manufacturer", "OWEN SYSTEMS"),  # WEN inside a word is not the name WEN
        ("Manufacturer", "LI"),  # a two-letter name part is not looked for
        ("Manufacturer", "DR JR Imaging"),  # prefixes and suffixes are not names
        ("ManufacturerModelName", "A77 Scanner"),  # identifiers shorter than 4 are not looked for
        ("SoftwareVersions", "VE11C"),
    ],
)
def test_equipment_text_sharing_letters_with_identifiers_is_kept(keyword: str, typed: str) -> None:
    cleaned = _cleaned(_patient(**{keyword: typed}))
    assert cleaned[keyword].value == typed


def test_a_two_letter_name_is_not_taken_for_the_code_it_spells() -> None:
    # the synthetic consortium's patient Hu: every CT's Rescale Type HU was replaced when 2 letters counted
    assert _cleaned(_patient(PatientName="Hu^Wen", RescaleType="HU")).RescaleType == "HU"


def test_a_name_in_the_files_own_character_set_is_found_in_kept_text() -> None:
    ds = _patient(SpecificCharacterSet="GB18030", PatientName="钟离秀英", Manufacturer="CT钟离秀英")
    assert _cleaned(ds).Manufacturer == "REMOVED"
    ds = _patient(SpecificCharacterSet="ISO_IR 192", PatientName="Þórsdóttir^Ǽsa", Manufacturer="ǼSA")
    assert _cleaned(ds).Manufacturer == "REMOVED"


def test_identifiers_are_read_without_converting_the_data_set() -> None:
    read = _read_back(_patient(Manufacturer="ACME"))
    raw_before = {int(t) for t, e in read._dict.items() if isinstance(e, pydicom.dataelem.RawDataElement)}
    echo = echo_of(read)
    raw_after = {int(t) for t, e in read._dict.items() if isinstance(e, pydicom.dataelem.RawDataElement)}
    assert raw_after == raw_before  # the fast path decides which values it reads by what pydicom converted
    assert "WEN" in echo.words and "LI" not in echo.words and "KOWALCZYKOWA" in echo.needles
    assert {"MRN40417", "19580312"} <= set(echo.needles) and "A77" not in echo.needles
    assert not NO_ECHO and not NO_ECHO.heard_in("WEN")


def test_kept_text_written_as_a_person_name_gets_the_dummy() -> None:
    # a name the file does not hold, pasted from a PN field: equipment text has no caret
    cleaned = _cleaned(_patient(Manufacturer="Doe^John", SoftwareVersions="VE11C"))
    assert (cleaned.Manufacturer, cleaned.SoftwareVersions) == ("REMOVED", "VE11C")


def test_one_cleaner_judges_each_files_kept_text_against_that_files_identifiers() -> None:
    # the cleaners reuse a verdict that did not read the value for the next file: a kept text's may not
    cleaner = Cleaner(load_profile(DEFAULT), KEYS, UIDS)
    outcomes = []
    for name in ("Kowalczykowa^Anna", "Acmeson^Jan", "Kowalczykowa^Anna"):
        read = _read_back(_patient(PatientName=name, Manufacturer="ACMESON"))
        cleaner.clean(read, Context(KEYS.patient_id("MRN1"), -10, echo_of(read)))
        outcomes.append(read.Manufacturer)
    assert outcomes == ["ACMESON", "REMOVED", "ACMESON"]


def test_a_descriptor_of_vocabulary_words_joined_by_a_caret_is_kept() -> None:
    cleaned = _cleaned(_patient(SeriesDescription="SAG^T2", Manufacturer="SAG^T2"))
    assert (cleaned.SeriesDescription, cleaned.Manufacturer) == ("SAG^T2", "SAG^T2")


def test_a_record_number_of_the_other_patient_ids_sequence_is_found_and_the_sequence_stays_raw() -> None:
    other = Dataset()
    other.PatientID = "OLD-4711-X"
    other.TypeOfPatientID = "TEXT"
    ds = _patient(Manufacturer="ACME OLD4711X", ManufacturerModelName="Scanner 3000")
    ds.OtherPatientIDsSequence = [other]
    read = _read_back(ds)
    echo = echo_of(read)
    assert "OLD4711X" in echo.needles
    assert isinstance(read._dict[0x00101002], pydicom.dataelem.RawDataElement)  # not converted in place
    cleaned = _cleaned(ds)
    assert (cleaned.Manufacturer, cleaned.ManufacturerModelName) == ("REMOVED", "Scanner 3000")


def test_a_header_naming_thousands_of_people_has_every_kept_text_replaced_in_bounded_time() -> None:
    # a hostile file: thousands of names and thousands of kept values would be compared pairwise
    ds = _patient(Manufacturer="ACME")
    ds.OperatorsName = [f"Operator{n:05d}^Given{n:05d}" for n in range(3000)]
    read = _read_back(ds)
    echo = echo_of(read)
    assert echo.overflow and echo.heard_in("ACME")
    assert _cleaned(ds).Manufacturer == "REMOVED"
