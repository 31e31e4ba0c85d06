"""Burned-in classes through ``cohortpool deid``: quarantined by default, de-identified when allowed.

One drop holds an instance of every SOP class in :data:`BURNED_IN_CLASSES`, one flagged Burned In
Annotation YES and a plain CT (the control), and goes through the CLI three times: with the default
configuration, with ``COHORTPOOL_DEID__ALLOW_BURNED_IN=true`` and with ``deid: {allow_burned_in:
true}`` in the YAML file the CLI reads (``COHORTPOOL_CONFIG``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID_dictionary
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.deid import Vault
from cohortpool.deid.burned_in import BURNED_IN_CLASSES
from config_support import write_config

NIGHT = "2024-05-06"
CT = "1.2.840.10008.5.1.4.1.1.2"
FLAGGED = "flagged"  # a CT whose header says Burned In Annotation YES
FACE = "face"  # a CT whose header says Recognizable Visual Features YES (a volume-rendered head)
FLAG_REASONS = {FLAGGED: "(0028,0301) is YES", FACE: "(0028,0302) is YES"}
CASES = sorted(BURNED_IN_CLASSES)
CONFIGURATIONS = ("default", "env", "yaml")


def _instance(path: Path, sop_class: str, number: int, flag: str = "NO", face: str = "NO") -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.9.4343.1.{number}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = (
        "1.2.826.0.1.3680043.9.4343.1",
        f"1.2.826.0.1.3680043.9.4343.2.{number}",
    )
    ds.PatientID, ds.PatientName, ds.StudyDate, ds.Modality = "MRN77", "Doe^Jane", "20240301", "OT"
    if sop_class.startswith("1.2.840.10008.5.1.4.1.1.104."):  # an encapsulated document, no pixels
        ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
        ds.EncapsulatedDocument = b"%PDF-1.4 Doe Jane MRN77\n"
    else:
        ds.BurnedInAnnotation, ds.RecognizableVisualFeatures = flag, face
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 4, 4, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = bytes(range(16))
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _drop(root: Path) -> tuple[Path, dict[str, str]]:
    """The drop and case -> input path (relative to the drop)."""
    drop = root / "site01" / NIGHT
    paths = {}
    for number, sop_class in enumerate(CASES, start=1):
        paths[sop_class] = f"dicom/{number:02d}/IM.dcm"
        _instance(drop / paths[sop_class], sop_class, number)
    paths[FLAGGED] = "dicom/flagged/IM.dcm"
    _instance(drop / paths[FLAGGED], CT, 900, flag="YES")
    paths[FACE] = "dicom/face/IM.dcm"
    _instance(drop / paths[FACE], CT, 902, face="YES")
    paths[CT] = "dicom/ct/IM.dcm"
    _instance(drop / paths[CT], CT, 901)
    return drop, paths


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, str], dict[str, tuple[int, Path, Path]]]:
    """The drop through ``cohortpool deid`` once per configuration: name -> (exit code, out, vault)."""
    root = tmp_path_factory.mktemp("burned-in")
    drop, paths = _drop(root)
    yaml = write_config(root / "cohortpool.yaml", deid={"allow_burned_in": True})
    plain = write_config(root / "sites.yaml")
    done = {}
    for name in CONFIGURATIONS:
        with pytest.MonkeyPatch.context() as env:
            env.setenv(
                "COHORTPOOL_SECRET", "d68e8019a55ff159d8dc8c3269b5b0e79686c9478a05fe9a2db79be8c3641191"
            )
            env.setenv("COHORTPOOL_CONFIG", str(yaml if name == "yaml" else plain))
            env.delenv("COHORTPOOL_DEID__ALLOW_BURNED_IN", raising=False)
            if name == "env":
                env.setenv("COHORTPOOL_DEID__ALLOW_BURNED_IN", "true")
            out, vault = root / name / "out", root / name / "vault"
            args = ["deid", str(drop), str(out), "--site", "site01", "--vault", str(vault), "--workers", "1"]
            result = CliRunner().invoke(app, args)
            assert result.exception is None or isinstance(result.exception, SystemExit), result.output
            done[name] = (result.exit_code, out, vault)
    return drop, paths, done


def _ledger(vault: Path) -> dict[str, tuple[str, str, str]]:
    return {r.input_path: (r.outcome, r.output_path, r.reason) for r in Vault(vault).read_ledger(NIGHT)}


@pytest.mark.parametrize("case", [*CASES, FLAGGED, FACE])
def test_quarantined_by_default_with_the_reason_and_the_original_kept(runs, case: str) -> None:
    drop, paths, done = runs
    code, _, vault = done["default"]
    assert code == 1  # something was quarantined
    outcome, output, reason = _ledger(vault)[paths[case]]
    assert (outcome, output) == ("quarantined", "")
    assert reason.startswith("burned-in annotation")
    assert FLAG_REASONS.get(case, f"({case})") in reason
    kept = vault / "quarantine" / NIGHT / paths[case]
    assert (
        hashlib.sha256(kept.read_bytes()).digest()
        == hashlib.sha256((drop / paths[case]).read_bytes()).digest()
    )


@pytest.mark.parametrize("configuration", ["env", "yaml"])
@pytest.mark.parametrize("case", [*CASES, FLAGGED, FACE])
def test_deidentified_when_the_configuration_allows_burned_in(runs, case: str, configuration: str) -> None:
    _, paths, done = runs
    code, out, vault = done[configuration]
    assert code == 0  # nothing was quarantined
    outcome, output, _ = _ledger(vault)[paths[case]]
    assert outcome == "deidentified"
    ds = pydicom.dcmread(out / output)
    assert ds.SOPClassUID == (CT if case in FLAG_REASONS else case)
    assert ds.PatientIdentityRemoved == "YES" and ds.PatientID != "MRN77"
    assert any("burned-in" in value for value in ds.DeidentificationMethod)  # the choice is recorded


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_the_control_ct_is_deidentified_in_every_configuration(runs, configuration: str) -> None:
    _, paths, done = runs
    assert _ledger(done[configuration][2])[paths[CT]][0] == "deidentified"


#: storage classes whose pixels typically carry identifying text, by their names in pydicom's UID
#: dictionary (independent of cohortpool): screenshots and scanned forms, ultrasound (patient banner;
#: the retired classes too, still sent by old machines), documents, endoscopy and photographs
_CARRIERS = re.compile(r"Secondary Capture|Ultrasound|Encapsulated (PDF|CDA)|Endoscopic|Photographic")


def test_every_class_known_to_carry_burned_in_text_is_listed() -> None:
    carriers = {
        uid
        for uid, (name, kind, *_) in UID_dictionary.items()
        if kind == "SOP Class" and name.endswith("Storage") and _CARRIERS.search(name)
    }
    assert len(carriers) >= 13
    assert sorted(carriers - set(BURNED_IN_CLASSES)) == []
