"""The imaging manifest: sequence families from headers, one row per series."""

from __future__ import annotations

import csv
import io

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from cohortpool.features.manifest import (
    MANIFEST_COLUMNS,
    _facts,
    age_in_years,
    instance_record,
    sequence_family,
    write_manifest,
)


def _mr(description: str = "", tr: str = "", te: str = "", options: str = "", protocol: str = "") -> Dataset:
    ds = Dataset()
    ds.Modality = "MR"
    if protocol:
        ds.ProtocolName = protocol
    if description:
        ds.SeriesDescription = description
    if tr:
        ds.RepetitionTime, ds.EchoTime = tr, te
    if options:
        ds.ScanOptions = options
    return ds


@pytest.mark.parametrize(
    ("ds", "family"),
    [
        (_mr("t1_tse_sag"), "T1"),
        (_mr("SAG T2 TSE"), "T2"),
        (_mr("t2_tse_sag_spair"), "FS"),
        (_mr("Sag STIR"), "FS"),
        (_mr("Ax T2 FSE", options="FS"), "FS"),
        # Philips names, as the reference site's scanner writes them
        (_mr("sT1W_TSE", options="PFP"), "T1"),
        (_mr("sT2W_TSE", options="PFP"), "T2"),
        (_mr("sT2W_SPAIR", options="FS"), "FS"),
        (_mr("", tr="500", te="12"), "T1"),
        (_mr("", tr="4000", te="100"), "T2"),
        (_mr("DWI", tr="1200", te="40"), "other"),
        # the series description outranks a protocol name reused from another series
        (_mr("SAG T2 TSE", protocol="T1_TSE_SAG"), "T2"),
        (_mr("", protocol="T1_TSE_SAG"), "T1"),
        # both in one description: the timing decides
        (_mr("T1 T2 compare", tr="4000", te="100"), "T2"),
    ],
)
def test_sequence_family_from_descriptions_then_timing(ds: Dataset, family: str) -> None:
    assert sequence_family(ds) == family


def test_sequence_family_is_empty_for_non_mr() -> None:
    ds = Dataset()
    ds.Modality, ds.SeriesDescription = "CT", "T1 looking text"
    assert sequence_family(ds) == ""


def test_manifest_groups_instances_into_series_with_counts(tmp_path) -> None:
    ds = _mr("t2_tse_sag", "3000", "90")
    ds.Rows, ds.Columns, ds.PixelSpacing, ds.SliceThickness = 512, 512, ["0.5", "0.6"], "3.0"
    ds.MagneticFieldStrength, ds.Manufacturer = "1.5", "SIEMENS"
    ids = {"patient_id": "P1", "accession_id": "A1", "study_uid": "2.25.1", "series_uid": "2.25.2",
           "study_date": "20240220"}  # fmt: skip
    records = [instance_record(ds, ids) for _ in range(3)]
    records.append(instance_record(ds, {**ids, "series_uid": "2.25.3"}))
    path = tmp_path / "imaging_manifest.csv"
    assert write_manifest(records, path, "site01") == 2
    rows = list(csv.DictReader(path.open()))
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    assert [r["instance_count"] for r in rows] == ["3", "1"]
    first = rows[0]
    assert (first["study_date"], first["pixel_spacing"], first["sequence_family"]) == (
        "2024-02-20",
        "0.5",
        "T2",
    )
    assert (first["field_strength"], first["image_rows"], first["source_row"]) == ("1.5", "512", "1")


def _from_bytes(ds: Dataset, syntax: str) -> Dataset:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))  # elements stay raw, as the workers read them


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_instance_record_reads_a_private_copy_and_leaves_the_header_as_the_file_has_it(syntax: str) -> None:
    ds = _mr("SAG T1 TSE", "500", "12")
    ds.SpecificCharacterSet = "GB18030"
    ds.Manufacturer, ds.ManufacturerModelName = "联影", "uMR 780"
    ds.PixelSpacing, ds.Rows, ds.Columns = ["0.5", "0.5"], 320, 320
    ids = {"patient_id": "P1", "study_uid": "2.25.1", "series_uid": "2.25.2", "study_date": "20240220"}
    expected = instance_record(ds, ids)  # built in memory: read directly
    facts = (expected["manufacturer"], expected["sequence_family"], expected["image_rows"])
    assert facts == ("联影", "T1", "320")
    read = _from_bytes(ds, syntax)
    raw_before = {tag for tag, elem in read._dict.items() if isinstance(elem, RawDataElement)}
    assert len(raw_before) >= 8  # dcmread decodes only the character set
    assert instance_record(read, ids) == expected
    # the cleaner decides on raw bytes: the manifest must not have decoded any element in place
    assert {tag for tag, elem in read._dict.items() if isinstance(elem, RawDataElement)} == raw_before
    # a header whose character set was decoded by an earlier read gives the same facts
    again = _from_bytes(ds, syntax)
    assert again.SpecificCharacterSet == "GB18030"
    assert instance_record(again, {**ids, "series_uid": "2.25.3"}) == {**expected, "series_uid": "2.25.3"}


@pytest.mark.parametrize(
    ("value", "years"),
    [("070Y", "70"), ("030M", "2"), ("011M", "0"), ("104W", "1"), ("400D", "1"), ("70", ""), ("", "")],
)
def test_patient_age_is_read_in_completed_years(value: str, years: str) -> None:
    assert age_in_years(value) == years


def test_age_and_sex_reach_the_record_but_not_the_manifest_and_the_memo_still_holds(tmp_path) -> None:
    ds = _mr("SAG T2 TSE", "3000", "90")
    ds.PatientAge, ds.PatientSex = "070Y", "F"
    ids = {"patient_id": "P1", "study_uid": "2.25.1", "series_uid": "2.25.2", "study_date": "20240220"}
    first, second = _from_bytes(ds, ExplicitVRLittleEndian), _from_bytes(ds, ExplicitVRLittleEndian)
    raw_before = {tag for tag, elem in second._dict.items() if isinstance(elem, RawDataElement)}
    record = instance_record(first, ids)
    assert (record["patient_age_years"], record["patient_sex"]) == ("70", "F")
    misses = _facts.cache_info().misses
    assert instance_record(second, {**ids, "sop_uid": "2.25.4"})["patient_age_years"] == "70"
    assert _facts.cache_info().misses == misses  # the series' second instance decodes nothing again
    assert {tag for tag, elem in second._dict.items() if isinstance(elem, RawDataElement)} == raw_before
    path = tmp_path / "imaging_manifest.csv"
    write_manifest([record], path, "site01")
    header, row = path.read_text(encoding="utf-8").splitlines()
    assert tuple(header.split(",")) == MANIFEST_COLUMNS
    assert "70" not in row.split(",") and ",F," not in row
