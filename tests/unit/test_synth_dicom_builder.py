"""The DICOM files: readable by pydicom and dcmtk, PHI where real exports hide it, the paper's protocol."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from synth_support import drop, read_csv, synthesize

from cohortpool.synth.dicom_builder import PRIVATE_CREATOR

SOP = {
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
}
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


# one worker synthesizes the consortium once for all of these modules (make test runs --dist loadgroup)
pytestmark = pytest.mark.xdist_group("synth_consortium")


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return synthesize(tmp_path_factory)


def text(value: Any) -> str:
    return value.decode("utf-8").rstrip(" ") if isinstance(value, bytes) else str(value)


def first_patient_files(out: Path, site: str) -> list[Path]:
    """Every file of the site's first patient folder (all three studies, every series)."""
    patient = sorted((drop(out, site) / "dicom").iterdir())[0]
    return sorted(patient.rglob("*.dcm"))


@pytest.mark.parametrize("site", ["site01", "site02", "site03"])
def test_files_are_valid_part10_with_consistent_pixels(consortium: tuple[Path, Any], site: str) -> None:
    out, _ = consortium
    files = first_patient_files(out, site)
    assert len(files) == 2 + 4 + 4 * 3  # AP + lateral, 4 CT slices, 4 MR series of 3 slices
    modalities = set()
    for f in files:
        ds = dcmread(f)  # raises on a missing preamble/File Meta
        assert f.read_bytes()[128:132] == b"DICM"
        modalities.add(ds.Modality)
        assert ds.SOPClassUID == SOP[ds.Modality] == ds.file_meta.MediaStorageSOPClassUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        expected_ts = IMPLICIT if (site == "site03" and ds.Modality == "CT") else EXPLICIT
        assert ds.file_meta.TransferSyntaxUID == expected_ts
        assert len(ds.PixelData) == ds.Rows * ds.Columns * ds.BitsAllocated // 8
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
        assert int(ds.pixel_array.max()) < 2**ds.BitsStored
        assert ds.SOPInstanceUID.startswith(f"1.3.6.1.4.1.99990.{int(site[-2:])}.")
    assert modalities in ({"DX", "CT", "MR"}, {"CR", "CT", "MR"})


def test_dcmdump_reads_every_kind_of_file(consortium: tuple[Path, Any]) -> None:
    dcmdump = shutil.which("dcmdump")
    if dcmdump is None:
        pytest.skip("dcmtk's dcmdump is not installed (apt-get install dcmtk)")
    out, _ = consortium
    files = [f for site in ("site01", "site02", "site03") for f in first_patient_files(out, site)]
    result = subprocess.run(
        [dcmdump, "-q", *map(str, files)], capture_output=True, text=True, errors="replace"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "E:" not in result.stderr
    assert result.stdout.count("# Dicom-File-Format") == len(files)


def test_site01_headers_carry_chinese_names_in_gb18030(consortium: tuple[Path, Any]) -> None:
    out, _ = consortium
    clinical = {r["mrn"]: r for r in read_csv(drop(out, "site01") / "clinical.csv")}
    ds = dcmread(first_patient_files(out, "site01")[0])
    assert ds.SpecificCharacterSet == "GB18030"
    name = clinical[ds.PatientID]["patient_name"]
    assert ds.PatientName.ideographic.replace("^", "") == name
    raw = ds.PatientName.original_string
    assert name[0].encode("gb18030") in raw  # stored in GB18030 bytes, not UTF-8
    assert name[0].encode("utf-8") not in raw
    assert ds.PatientName.family_name.isascii()  # the pinyin group


def test_other_sites_use_utf8_and_english_names(consortium: tuple[Path, Any]) -> None:
    out, _ = consortium
    for site in ("site02", "site03"):
        ds = dcmread(first_patient_files(out, site)[0])
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        assert str(ds.PatientName).replace("^", "").isalpha()


@pytest.mark.parametrize("site", ["site01", "site02", "site03"])
def test_phi_is_planted_where_real_exports_hide_it(consortium: tuple[Path, Any], site: str) -> None:
    out, _ = consortium
    files = first_patient_files(out, site)
    instances = {str(dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
    clinical = {r["mrn"]: r for r in read_csv(drop(out, site) / "clinical.csv")}
    for f in files:
        ds = dcmread(f, stop_before_pixels=True)
        mrn = ds.PatientID
        row = clinical[mrn]
        block = ds.private_block(0x0009 if site == "site01" else (0x0011 if site == "site02" else 0x0013),
                                 PRIVATE_CREATOR)  # fmt: skip
        # in an Implicit VR file a reader without the private dictionary sees raw UN bytes
        assert text(block[0x01].value) == mrn
        assert text(block[0x02].value) == str(ds.PatientName)
        assert text(block[0x03].value) == ds.AccessionNumber
        assert ds.OtherPatientIDsSequence[0].PatientID.isdigit()
        assert ds.RequestAttributesSequence[0].AccessionNumber == ds.AccessionNumber
        assert row["patient_name"] in ds.PatientComments
        assert mrn in ds.ImageComments
        assert ds.PatientAddress == row["address"]
        assert ds.PatientTelephoneNumbers == row["phone"]
        for keyword in ("InstitutionName", "StationName", "DeviceSerialNumber", "OperatorsName",
                        "ReferringPhysicianName", "NameOfPhysiciansReadingStudy", "StudyTime"):  # fmt: skip
            assert str(ds.data_element(keyword).value), keyword
        if "ReferencedImageSequence" in ds:
            assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID in instances - {ds.SOPInstanceUID}
    referencing = sum("ReferencedImageSequence" in dcmread(f, stop_before_pixels=True) for f in files)
    assert referencing == len(files) - 1  # all but the patient's very first image


def test_site01_uses_the_papers_equipment_and_mri_protocol(consortium: tuple[Path, Any]) -> None:
    out, _ = consortium
    seen: dict[str, Any] = {}
    mr_params = set()
    for f in first_patient_files(out, "site01"):
        ds = dcmread(f, stop_before_pixels=True)
        seen[ds.Modality] = (ds.Manufacturer, ds.ManufacturerModelName)
        if ds.Modality == "MR":
            assert float(ds.MagneticFieldStrength) == 3.0
            assert float(ds.SliceThickness) == 3.0
            assert float(ds.SpacingBetweenSlices) == 3.5
            orientation = "SAG" if list(ds.ImageOrientationPatient) == [0, 1, 0, 0, 0, -1] else "TRA"
            mr_params.add((orientation, float(ds.RepetitionTime), float(ds.EchoTime)))
    assert seen["DX"] == ("Kodak", "DR 7500")
    assert seen["CT"] == ("SIEMENS", "SOMATOM Definition AS")
    assert seen["MR"] == ("Philips Medical Systems", "Ingenia")
    assert mr_params == {("SAG", 600, 12), ("SAG", 2900, 110), ("SAG", 6700, 180), ("TRA", 2900, 129)}


def test_sites_have_different_vendors(consortium: tuple[Path, dict[str, Any]]) -> None:
    _, summary = consortium
    vendors = [tuple(sorted(s["vendors"].items())) for s in summary["sites"]]
    assert len(set(vendors)) == 3


def test_dciodvfy_finds_no_iod_errors(consortium: tuple[Path, Any]) -> None:
    dciodvfy = shutil.which("dciodvfy")
    if dciodvfy is None:
        pytest.skip("dicom3tools' dciodvfy is not installed (apt-get install dicom3tools)")
    out, _ = consortium
    for site in ("site01", "site02", "site03"):
        for f in first_patient_files(out, site):
            if f.name != "IM0001.dcm":
                continue
            result = subprocess.run([dciodvfy, str(f)], capture_output=True, text=True, errors="replace")
            errors = [
                line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")
            ]
            assert not errors, (f, errors)
