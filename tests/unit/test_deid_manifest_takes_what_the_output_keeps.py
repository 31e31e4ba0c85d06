"""The imaging manifest says no more than the de-identified DICOM: a value typed where a modality,
a maker or a patient characteristic belongs reaches neither the output nor the manifest (and so not the
hub's quarantine list or Data Docs), and a text attribute written as bytes is never a ``b'...'`` repr.

Both cleaners: the explicit VR little endian file takes the raw-bytes fast path, the big endian one
pydicom's (both explicit VR: a VR that is not the dictionary's can only be written there).
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian

from cohortpool.deid import deidentify_tree
from cohortpool.features import instance_record, write_manifest

SECRET = b"b5c7f931cd15290b9f3cf1ac48694910d138eb3cee8b65f5ab52cf7315d4899d"
NIGHT = "2024-05-06"
CT = "1.2.840.10008.5.1.4.1.1.2"
ROOT = "1.2.826.0.1.3680043.9.8888."
NAME = "JOAN MOORE"


def _ct(n: int, ts: str, **values: object) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = f"{ROOT}3.{n}"
    ds.file_meta.TransferSyntaxUID = ts
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = f"{ROOT}3.{n}"
    ds.StudyInstanceUID = f"{ROOT}1.{n}"
    ds.SeriesInstanceUID = f"{ROOT}2.{n}"
    ds.PatientID = f"MRN{n}"
    ds.StudyDate = "20240301"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ds.ManufacturerModelName = "SCANNER 9"
    ds.PatientSex = "F"
    ds.PatientAge = "070Y"
    ds.SliceThickness = "3"
    ds.Rows = ds.Columns = 2
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the values below are meant to be invalid
        for keyword, value in values.items():
            if isinstance(value, bytes):  # the attribute written under another VR
                ds.add_new(pydicom.datadict.tag_for_keyword(keyword), "OB", value)
            else:
                setattr(ds, keyword, value)
        ds.PixelData = b"\x01\x00" * 4
        buffer = io.BytesIO()
        ds.save_as(buffer, little_endian=ts != ExplicitVRBigEndian, enforce_file_format=True)
    return buffer.getvalue()


CASES = {
    # free text in a code string: too long for CS, removed from the output
    "long": {"Modality": f"CT {NAME}"},
    # a code string's form but not a modality: kept by the output's form check, not a defined term
    "coded": {"Modality": "CT JOAN"},
    "lower": {"Modality": "ct"},
    # Manufacturer as OB: removed from the output (not its dictionary VR), never b'...' in the manifest
    "bytes": {"Manufacturer": NAME.encode(), "ManufacturerModelName": NAME.encode()},
    # patient characteristics the option keeps only as their enumerated values and forms
    "characteristics": {"PatientSex": "JOAN", "PatientAge": "JOAN"},
    # numbers that are text
    "numbers": {"SliceThickness": "NaN"},
}


@pytest.fixture(scope="module", params=[ExplicitVRLittleEndian, ExplicitVRBigEndian], ids=["fast", "pydicom"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("manifest")
    drop = root / "drop"
    drop.mkdir()
    names = ["clean", *CASES]
    for n, name in enumerate(names):
        (drop / f"{name}.dcm").write_bytes(_ct(n, request.param, **CASES.get(name, {})))
    out = root / "out"
    result = deidentify_tree(drop, out, root / "vault", "site01", SECRET, NIGHT, record_hook=instance_record)
    assert result.counts["deidentified"] == len(names), result.rows
    if request.param == ExplicitVRLittleEndian:
        assert result.fast_path == len(names)
    by_name = {}
    for row in result.rows:
        output = pydicom.dcmread(out / row.output_path)
        record = next(r for r in result.records if r["series_uid"] == str(output.SeriesInstanceUID))
        by_name[Path(row.input_path).stem] = (record, output)
    manifest = root / "imaging_manifest.csv"
    write_manifest(result.records, manifest, "site01")
    return by_name, manifest.read_text(encoding="utf-8")


def test_a_clean_header_gives_its_facts(run) -> None:
    by_name, _ = run
    record, _output = by_name["clean"]
    assert (record["modality"], record["manufacturer"], record["model"]) == ("CT", "ACME", "SCANNER 9")
    assert (record["patient_sex"], record["patient_age_years"], record["slice_thickness"]) == ("F", "70", "3")


@pytest.mark.parametrize("name", list(CASES))
def test_a_manifest_value_is_what_the_output_keeps_or_empty(run, name: str) -> None:
    by_name, _ = run
    record, output = by_name[name]
    columns = {
        "modality": "Modality",
        "manufacturer": "Manufacturer",
        "model": "ManufacturerModelName",
        "patient_sex": "PatientSex",
        "slice_thickness": "SliceThickness",
    }
    for column, keyword in columns.items():
        kept = output.get(keyword)
        kept_text = "" if kept is None or isinstance(kept, bytes) else str(kept).strip()
        assert record[column] in ("", kept_text), (column, record[column], kept_text)
    if "PatientAge" in CASES[name]:
        assert record["patient_age_years"] == "" and "PatientAge" not in output
    for keyword in CASES[name]:
        column = {v: k for k, v in columns.items()}.get(keyword)
        if column is not None:
            assert record[column] == "", (keyword, record[column])


def test_the_modality_is_a_defined_term_or_empty(run) -> None:
    by_name, _ = run
    assert {name: by_name[name][0]["modality"] for name in ("long", "coded", "lower")} == {
        "long": "",
        "coded": "",
        "lower": "",
    }


def test_no_typed_text_and_no_bytes_repr_reach_the_manifest(run) -> None:
    _, text = run
    assert "JOAN" not in text.upper()
    assert "b'" not in text and 'b"' not in text and "NaN" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["modality"] for row in rows} == {"CT", ""}
