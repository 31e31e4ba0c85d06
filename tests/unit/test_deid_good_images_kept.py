"""Legal images are kept; what is held back says why (issue 13, "keep good images").

- An empty or absent Patient ID (Type 2 in the Patient Module: legal) is pseudonymised from the study
  (keyed, one pseudonym per study), flagged unlinked in its manifest record, counted in the night's
  summary and the crosswalk, never quarantined.
- A SOP class found only in the file meta (Media Storage SOP Class UID) is taken from there.
- A file without pixel data is quarantined as "no pixel data", a DICOMDIR as "DICOMDIR", a
  presentation state as "presentation state", and only a file cut short as "truncated".
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from cohortpool.deid import Pseudonymiser, Vault, deidentify_tree
from cohortpool.deid.pseudonym import unlinked_key
from cohortpool.deid.worker import UNLINKED_FLAG
from cohortpool.features import instance_record

SECRET = b"b5c7f931cd15290b9f3cf1ac48694910d138eb3cee8b65f5ab52cf7315d4899d"
NIGHT = "2024-05-06"
CT = "1.2.840.10008.5.1.4.1.1.2"
KEYS = Pseudonymiser(SECRET, "site01")


def _ct(study: str, sop: str, **attributes: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = CT, sop
    ds.SOPClassUID, ds.SOPInstanceUID = CT, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, study + ".9"
    ds.PatientName, ds.Modality, ds.StudyDate = "Doe^Jane", "CT", "20240301"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 2, 2, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(4)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _write(ds: Dataset, path: Path, enforce: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if enforce:
        ds.save_as(path, enforce_file_format=True)
    else:  # keep a data set exactly as built (no SOP Class UID added from the meta)
        buffer = io.BytesIO()
        pydicom.filewriter.dcmwrite(buffer, ds, write_like_original=True)
        path.write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("good")
    drop = root / "drop" / "dicom"
    _write(
        _ct("1.2.826.0.1.3680043.9.5151.1", "1.2.826.0.1.3680043.9.5151.1.1", PatientID=""),
        drop / "empty1.dcm",
    )
    _write(
        _ct("1.2.826.0.1.3680043.9.5151.1", "1.2.826.0.1.3680043.9.5151.1.2", PatientID=""),
        drop / "empty2.dcm",
    )
    _write(_ct("1.2.826.0.1.3680043.9.5151.2", "1.2.826.0.1.3680043.9.5151.2.1"), drop / "absent.dcm")
    _write(
        _ct("1.2.826.0.1.3680043.9.5151.3", "1.2.826.0.1.3680043.9.5151.3.1", PatientID="MRN5"),
        drop / "linked.dcm",
    )
    meta_only = _ct("1.2.826.0.1.3680043.9.5151.3", "1.2.826.0.1.3680043.9.5151.3.2", PatientID="MRN5")
    del meta_only.SOPClassUID
    meta_only.preamble = b"\0" * 128
    meta_only.file_meta.MediaStorageSOPClassUID = CT
    _write(meta_only, drop / "meta_only.dcm", enforce=False)
    header_only = _ct("1.2.826.0.1.3680043.9.5151.4", "1.2.826.0.1.3680043.9.5151.4.1", PatientID="MRN6")
    del header_only.PixelData
    _write(header_only, drop / "header_only.dcm")
    implicit_header_only = _ct(
        "1.2.826.0.1.3680043.9.5151.4", "1.2.826.0.1.3680043.9.5151.4.2", PatientID="MRN6"
    )
    del implicit_header_only.PixelData
    implicit_header_only.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    _write(implicit_header_only, drop / "implicit_header_only.dcm")
    pr = _ct("1.2.826.0.1.3680043.9.5151.5", "1.2.826.0.1.3680043.9.5151.5.1", PatientID="MRN7")
    for keyword in ("PixelData", "Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation",
                    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"):  # fmt: skip
        delattr(pr, keyword)
    pr.SOPClassUID = pr.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.11.1"
    _write(pr, drop / "pr.dcm")
    directory = pydicom.dcmread(pydicom.data.get_testdata_file("DICOMDIR", download=False))
    directory.save_as(drop / "DICOMDIR", enforce_file_format=True)
    good = (drop / "linked.dcm").read_bytes()
    (drop / "cut.dcm").write_bytes(good[: good.index(b"\xe0\x7f\x10\x00") + 14])
    out, vault = root / "out", root / "vault"
    result = deidentify_tree(drop, out, vault, "site01", SECRET, NIGHT, record_hook=instance_record)
    return drop, out, vault, result


def _ledger(vault: Path) -> dict[str, dict[str, str]]:
    return {r.input_path: vars(r) for r in Vault(vault).read_ledger(NIGHT)}


def test_an_empty_or_absent_patient_id_is_pseudonymised_from_the_study_not_quarantined(run) -> None:
    _, out, vault, result = run
    ledger = _ledger(vault)
    for name in ("empty1.dcm", "empty2.dcm", "absent.dcm"):
        assert ledger[name]["outcome"] == "deidentified", ledger[name]
    ids = {name: pydicom.dcmread(out / ledger[name]["output_path"]).PatientID for name in ledger
           if ledger[name]["outcome"] == "deidentified"}  # fmt: skip
    assert (
        ids["empty1.dcm"]
        == ids["empty2.dcm"]
        == KEYS.patient_id(unlinked_key("1.2.826.0.1.3680043.9.5151.1"))
    )
    assert ids["absent.dcm"] == KEYS.patient_id(unlinked_key("1.2.826.0.1.3680043.9.5151.2"))
    assert ids["absent.dcm"] != ids["empty1.dcm"]  # one pseudonym per study: unlinked across studies
    assert ids["linked.dcm"] == KEYS.patient_id("MRN5")
    assert result.unlinked == 3


def test_unlinked_instances_are_flagged_in_their_records_the_summary_and_the_crosswalk(run) -> None:
    _, _, vault, result = run
    flagged = {r["patient_id"] for r in result.records if r.get(UNLINKED_FLAG)}
    linked = {r["patient_id"] for r in result.records if not r.get(UNLINKED_FLAG)}
    assert len(flagged) == 2 and KEYS.patient_id("MRN5") in linked and not flagged & linked
    summary = list(csv.DictReader((vault / "ledger" / f"{NIGHT}.summary.csv").open(encoding="utf-8")))
    assert {
        "what": "unlinked",
        "keyword": "PatientID",
        "tag": "(0010,0020)",
        "vr": "LO",
        "count": "3",
    } in summary
    crosswalk = list(csv.DictReader((vault / "crosswalk.csv").open(encoding="utf-8")))
    studies = {r["local_id"]: r["pseudonym"] for r in crosswalk if r["kind"] == "study"}
    assert studies == {
        "1.2.826.0.1.3680043.9.5151.1": KEYS.patient_id(unlinked_key("1.2.826.0.1.3680043.9.5151.1")),
        "1.2.826.0.1.3680043.9.5151.2": KEYS.patient_id(unlinked_key("1.2.826.0.1.3680043.9.5151.2")),
    }


def test_a_sop_class_only_in_the_file_meta_is_taken_from_there(run) -> None:
    drop, out, vault, _ = run
    assert "SOPClassUID" not in pydicom.dcmread(drop / "meta_only.dcm")  # the control
    row = _ledger(vault)["meta_only.dcm"]
    assert row["outcome"] == "deidentified", row
    output = pydicom.dcmread(out / row["output_path"])
    assert output.SOPClassUID == CT == output.file_meta.MediaStorageSOPClassUID


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("header_only.dcm", "no pixel data"),
        ("implicit_header_only.dcm", "no pixel data"),
        ("pr.dcm", "presentation state"),
        ("DICOMDIR", "DICOMDIR"),
        ("cut.dcm", "truncated"),
    ],
)
def test_quarantine_reasons_say_what_happened(run, name: str, kind: str) -> None:
    _, _, vault, result = run
    row = _ledger(vault)[name]
    assert (row["outcome"], row["reason"].split(":", 1)[0]) == ("quarantined", kind), row
    assert result.reasons[kind] >= 1
