"""Each action code and the rules beyond the table, on datasets read back from real bytes."""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from cohortpool.deid.actions import Cleaner, Context
from cohortpool.deid.encode import encode_dataset
from cohortpool.deid.profile import load_profile
from cohortpool.deid.pseudonym import Pseudonymiser
from cohortpool.deid.uids import UidMapper

DEFAULT = ("clean_descriptors", "retain_long_modified_dates", "retain_patient_characteristics")
KEYS = Pseudonymiser(b"k", "site01")
UIDS = UidMapper(b"k")


def _read(ds: Dataset, ts: str = ExplicitVRLittleEndian) -> Dataset:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)  # elements stay raw, as in a real run


def _clean(ds: Dataset, options: tuple[str, ...] = DEFAULT, ts: str = ExplicitVRLittleEndian) -> Dataset:
    read = _read(ds, ts)
    implicit = ts == ImplicitVRLittleEndian
    Cleaner(load_profile(options), KEYS, UIDS).clean(read, Context(KEYS.patient_id("MRN1"), -10))
    data = encode_dataset(read, implicit, True)
    return pydicom.filereader.read_dataset(io.BytesIO(data), implicit, True)


def _base() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientID = "MRN1"
    ds.PatientName = "Doe^Jane"
    return ds


def test_identity_attributes_get_the_keyed_pseudonyms() -> None:
    ds = _base()
    ds.AccessionNumber = "ACC9"
    out = _clean(ds)
    assert out.PatientID == KEYS.patient_id("MRN1")
    assert out.PatientName == KEYS.patient_id("MRN1")
    assert out.AccessionNumber == KEYS.accession_digest("ACC9")


def test_x_removes_z_empties_d_dummies_u_maps() -> None:
    ds = _base()
    ds.InstitutionAddress = "1 Main St"  # X
    ds.ReferringPhysicianName = "Who^Doc"  # Z
    ds.InstitutionName = "St Elsewhere"  # X/Z/D -> D
    ds.StudyID = "S1"  # Z
    ds.FrameOfReferenceUID = "1.2.3.9"  # U
    out = _clean(ds)
    assert "InstitutionAddress" not in out
    assert out.ReferringPhysicianName == "" and out.StudyID == ""
    assert out.InstitutionName == "REMOVED"
    assert out.FrameOfReferenceUID == UIDS.map("1.2.3.9")
    assert out.SOPInstanceUID == UIDS.map("1.2.3.4")
    assert out.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"


def test_dates_shift_by_the_patients_offset_and_times_stay() -> None:
    ds = _base()
    ds.StudyDate, ds.StudyTime = "20240301", "101010"
    ds.AcquisitionDateTime = "20240301101010"
    ds.PatientBirthDate = "19500101"  # Z: not kept by any default option
    out = _clean(ds)
    assert out.StudyDate == "20240220" and out.StudyTime == "101010"
    assert out.AcquisitionDateTime == "20240220101010"
    assert out.PatientBirthDate == ""


def test_clean_descriptors_keep_only_vocabulary_words() -> None:
    ds = _base()
    ds.SeriesDescription = "t2_tse_sag"
    ds.StudyDescription = "Spine for Dr Smith"
    ds.ProtocolName = "SAG T1 Zoë"  # not ASCII: cannot be on the vocabulary
    out = _clean(ds)
    assert out.SeriesDescription == "t2_tse_sag"
    assert "StudyDescription" not in out  # basic X
    assert out.ProtocolName == "REMOVED"  # basic X/D -> dummy


def test_clean_descriptors_refuse_a_name_between_vocabulary_words_after_the_value_was_decoded() -> None:
    ds = _base()
    ds.SpecificCharacterSet = "GB18030"
    ds.SeriesDescription = "SAG T2 钟离秀英"
    read = _read(ds)
    assert read.SeriesDescription.startswith("SAG T2")  # decoded before cleaning, as the manifest does
    Cleaner(load_profile(DEFAULT), KEYS, UIDS).clean(read, Context(KEYS.patient_id("MRN1"), -10))
    data = encode_dataset(read, False, True)
    assert "钟离秀英".encode("gb18030") not in data
    # the Basic Profile removes a series description that cannot be kept
    assert "SeriesDescription" not in pydicom.filereader.read_dataset(io.BytesIO(data), False, True)


def test_dates_the_table_does_not_name_are_shifted_like_the_ones_it_names() -> None:
    ds = _base()
    ds.StudyDate = "20240301"
    ds.StudyUpdateDateTime = "20240305101010"  # (0008,041F): not in Table E.1-1
    ds.ExpiryDate = "2024"  # (0014,1020): not in the table and not a full date
    out = _clean(ds)
    assert out.StudyDate == "20240220"
    assert out.StudyUpdateDateTime == "20240224101010"  # the same offset: intervals hold
    assert "ExpiryDate" not in out  # cannot be shifted without inventing precision: removed
    full = _clean(ds, ("retain_long_full_dates",))
    assert full.StudyUpdateDateTime == "20240305101010"
    basic = _clean(ds, ())
    assert "StudyUpdateDateTime" not in basic


def test_patient_characteristics_are_kept_with_the_option_only() -> None:
    ds = _base()
    ds.PatientSex, ds.PatientAge, ds.PatientWeight = "F", "071Y", "61"
    kept = _clean(ds)
    assert (kept.PatientSex, kept.PatientAge, kept.PatientWeight) == ("F", "071Y", 61)
    basic = _clean(ds, options=())
    assert basic.PatientSex == "" and "PatientAge" not in basic and "PatientWeight" not in basic


def test_nested_sequences_are_cleaned_at_every_depth_and_references_mapped() -> None:
    inner = Dataset()
    inner.PatientName = "Deep^Name"
    inner.ReferencedSOPInstanceUID = "1.2.3.4"
    inner.ImageComments = "free text"
    middle = Dataset()
    middle.AnatomicRegionSequence = Sequence([inner])  # not in the table: kept, cleaned inside
    middle.InstitutionName = "Hosp"
    ds = _base()
    ds.AnatomicRegionSequence = Sequence([middle])
    out = _clean(ds)
    deep = out.AnatomicRegionSequence[0].AnatomicRegionSequence[0]
    assert deep.PatientName == ""
    assert deep.ReferencedSOPInstanceUID == out.SOPInstanceUID == UIDS.map("1.2.3.4")
    assert "ImageComments" not in deep
    assert out.AnatomicRegionSequence[0].InstitutionName == "REMOVED"


def test_private_overlays_curves_free_text_and_group_lengths_are_removed() -> None:
    ds = _base()
    block = ds.private_block(0x0009, "ACME", create=True)
    block.add_new(0x10, "LO", "secret")
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60003000, "OW", b"\x01\x02")
    ds.add_new(0x50003000, "OW", b"\x01\x02")
    ds.add_new(0x00284000, "LT", "unlisted free text")
    ds.add_new(0x00080000, "UL", 0)
    out = _clean(ds)
    assert not [e for e in out if e.tag.is_private]
    assert not [e for e in out if e.tag.group in (0x6000, 0x5000)]
    assert 0x00284000 not in out and 0x00080000 not in out


def test_safe_private_option_keeps_listed_private_attributes_with_their_creator() -> None:
    ds = _base()
    block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    block.add_new(0x23, "DS", "1.5")  # Table E.3.10-1: table speed
    block.add_new(0x25, "LO", "not on the list")
    out = _clean(ds, options=(*DEFAULT, "retain_safe_private"))
    kept = {int(e.tag) for e in out if e.tag.is_private}
    assert kept == {0x00190010, 0x00191023}


def test_implicit_vr_datasets_are_cleaned_the_same() -> None:
    ds = _base()
    ds.InstitutionAddress = "1 Main St"
    ds.StudyDate = "20240301"
    out = _clean(ds, ts=ImplicitVRLittleEndian)
    assert "InstitutionAddress" not in out
    assert out.StudyDate == "20240220"


def test_unknown_standard_attributes_are_removed_because_their_content_cannot_be_judged() -> None:
    ds = _base()
    ds.add_new(0x00091234, "LO", "private")  # private: removed anyway
    ds.add_new(0x0011FFFE, "UN", b"x")  # odd group
    ds.add_new(0x00F00010, "UN", b"Jane Doe")  # an even group no dictionary knows
    out = _clean(ds)
    assert 0x00F00010 not in out and 0x0011FFFE not in out
