"""`cohortpool deid` over a drop with unique tokens planted in every identifying place.

The corpus (tests/data/deid_corpus.py) plants tokens in every attribute Table E.1-1 names, nested
sequences, private blocks, overlays, curves, file meta, trailing elements, folder and file names,
GB18030 / UTF-8 / ISO 2022 names, free text, burned-in pixels and the CSV tables, plus every valid
transfer-syntax variant and every kind of bad input. Then every output byte and path is scanned.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zlib
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from deid_corpus import (
    NIGHT,
    SITE,
    UNKNOWN_STANDARD_TAGS,
    UNLISTED_MODULE_ATTRIBUTES,
    Corpus,
    build_corpus,
    find_leaks,
)

from cohortpool.deid import Pseudonymiser, Vault
from cohortpool.features.manifest import sequence_family
from config_support import write_config

pytestmark = pytest.mark.integration
SECRET = "3d9814acd9c26ffcb397cf82c99d3407e7421914f93634677d91da7e0d9ef72e"
PIXEL = 0x7FE00010


def run_deid(drop: Path, out: Path, vault: Path, workers: int = 2) -> subprocess.CompletedProcess[str]:
    config = write_config(vault.parent / "planted-sites.yaml", sites=(SITE,))  # the corpus's own site
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET, "COHORTPOOL_CONFIG": str(config)}
    command = [sys.executable, "-m", "cohortpool", "deid", str(drop), str(out), "--site", SITE,
               "--vault", str(vault), "--workers", str(workers)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope="session")
def planted(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Corpus, Path, Path, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("planted")
    corpus = build_corpus(root / "landing")
    out, vault = root / "submission", root / "vault"
    proc = run_deid(corpus.drop, out, vault)
    return corpus, out, vault, proc


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_scanner_finds_every_kind_of_planted_token_in_the_input(planted, tmp_path) -> None:
    # the negative control: the same scan over the input must see tokens of every kind
    corpus, *_ = planted
    hits = "\n".join(find_leaks(corpus.drop, corpus.literal_tokens))
    for token in [corpus.tokens[0], corpus.uids[0], *corpus.literal_tokens, *corpus.mrns]:
        assert token in hits, token
    for encoding in ("utf-16-le", "utf-16-be", "gb18030"):
        (tmp_path / encoding).write_bytes(
            f"x {corpus.tokens[5]} {corpus.uids[3]} 钟离秀英 y".encode(encoding)
        )
    found = find_leaks(tmp_path, corpus.literal_tokens)
    for encoding in ("utf-16-le", "utf-16-be", "gb18030"):
        mine = [h for h in found if h.startswith(f"file {encoding}:")]
        assert any("Q" in h and "Z" in h and "K" in h for h in mine), mine  # the ASCII token
        assert any("7777" in h or "7\\x007\\x007" in h for h in mine), mine  # the UID
        assert any("钟离秀英" in h for h in mine), mine


def test_exit_code_is_one_because_bad_inputs_were_quarantined(planted) -> None:
    *_, proc = planted
    assert proc.returncode == 1, proc.stderr


def test_no_planted_token_survives_in_any_output_byte_path_or_log(planted) -> None:
    corpus, out, _, proc = planted
    hits = find_leaks(out, corpus.literal_tokens, extra_text=proc.stdout + proc.stderr)
    assert hits == []


def test_every_input_file_is_accounted_for_with_the_expected_outcome(planted) -> None:
    corpus, out, vault, _ = planted
    rows = Vault(vault).read_ledger(NIGHT)
    assert {r.input_path: r.outcome for r in rows} == corpus.expected
    counts = {o: sum(1 for r in rows if r.outcome == o) for o in ("deidentified", "quarantined", "duplicate")}
    assert sum(counts.values()) == len(corpus.expected)
    outputs = sorted(p.relative_to(out).as_posix() for p in (out / "dicom").rglob("*.dcm"))
    assert outputs == sorted(r.output_path for r in rows if r.outcome == "deidentified")
    for row in rows:
        if row.outcome == "quarantined":
            assert row.reason
            kept = vault / "quarantine" / NIGHT / row.input_path
            assert hashlib.sha256(kept.read_bytes()).hexdigest() == row.sha256


def test_output_paths_are_built_from_pseudonyms_and_new_uids_only(planted) -> None:
    _, out, _, _ = planted
    pattern = re.compile(r"^dicom/P[0-9A-F]{16}/2\.25\.\d{1,39}/2\.25\.\d{1,39}/2\.25\.\d{1,39}\.dcm$")
    for path in (out / "dicom").rglob("*.dcm"):
        assert pattern.match(path.relative_to(out).as_posix())
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert path.relative_to(out).parts[1:] == (
            ds.PatientID,
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            f"{ds.SOPInstanceUID}.dcm",
        )


def test_pixel_data_is_byte_identical_to_the_input(planted) -> None:
    corpus, out, vault, _ = planted
    rows = {r.input_path: r for r in Vault(vault).read_ledger(NIGHT)}
    checked = 0
    for relative, pixels in corpus.pixels.items():
        row = rows[relative]
        if row.outcome != "deidentified":
            continue
        ds = pydicom.dcmread(out / row.output_path)
        assert ds[PIXEL].value == pixels, relative
        checked += 1
    assert checked >= 14


def test_outputs_parse_with_dcmtk(planted) -> None:
    if shutil.which("dcmdump") is None:
        pytest.skip("dcmtk (dcmdump) is not installed")
    _, out, _, _ = planted
    for path in (out / "dicom").rglob("*.dcm"):
        proc = subprocess.run(["dcmdump", "-q", str(path)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (path.name, proc.stderr)
        assert "E:" not in proc.stderr


def test_markers_record_profile_edition_and_options(planted) -> None:
    _, out, _, _ = planted
    for path in (out / "dicom").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert "DICOM PS3.15 2026c" in ds.DeidentificationMethod[0]
        codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
        assert codes == {"113100", "113105", "113107", "113108"}
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        assert not [e for e in ds if e.tag.is_private]


def test_references_between_instances_use_the_same_new_uids(planted) -> None:
    _, out, _, _ = planted
    sops, referenced, frames = set(), set(), {}
    for path in (out / "dicom").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        sops.add(ds.SOPInstanceUID)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        for item in ds.get("ReferencedImageSequence", []):
            referenced.add(item.ReferencedSOPInstanceUID)
        frames.setdefault(ds.StudyInstanceUID, set()).add(ds.FrameOfReferenceUID)
    assert referenced & sops  # the second CT of each patient references the first by its new UID
    assert all(len(f) == 1 for f in frames.values())


def test_dicom_and_csv_pseudonyms_link(planted) -> None:
    corpus, out, _, _ = planted
    keys = Pseudonymiser(SECRET.encode(), SITE)
    clinical = list(csv.DictReader((out / "clinical.csv").open(encoding="utf-8")))
    reads = list(csv.DictReader((out / "reads.csv").open(encoding="utf-8")))
    manifest = list(csv.DictReader((out / "imaging_manifest.csv").open(encoding="utf-8")))
    expected_patients = {keys.patient_id(m) for m in corpus.mrns}
    assert {r["patient_id"] for r in clinical} == expected_patients
    assert {r["patient_id"] for r in manifest} == expected_patients
    assert {r["accession_id"] for r in reads} <= {r["accession_id"] for r in manifest}
    dicom_patients = {pydicom.dcmread(p).PatientID for p in (out / "dicom").rglob("*.dcm")}
    assert dicom_patients == expected_patients
    accession_digests = {pydicom.dcmread(p).AccessionNumber for p in (out / "dicom").rglob("*.dcm")}
    assert {"A" + a for a in accession_digests} == {r["accession_id"] for r in manifest}
    # the first exam date is shifted by the same keyed offset as the images' dates
    assert all(r["first_exam_date"] != "2024-03-01" for r in clinical)
    assert {r["age_years"] for r in clinical} == {"92"}


def test_same_input_and_secret_give_byte_identical_output_and_second_run_changes_nothing(
    planted, tmp_path
) -> None:
    corpus, shared_out, shared_vault, _ = planted
    out, vault = tmp_path / "again" / "out", tmp_path / "again" / "vault"
    shutil.copytree(shared_out, out)
    shutil.copytree(shared_vault, vault)
    first = _tree_digest(out)
    vault_before = _tree_digest(vault)
    again = run_deid(corpus.drop, out, vault, workers=1)
    assert again.returncode == 1
    assert _tree_digest(out) == first
    assert _tree_digest(vault) == vault_before
    fresh_out, fresh_vault = tmp_path / "fresh" / "out", tmp_path / "fresh" / "vault"
    run_deid(corpus.drop, fresh_out, fresh_vault, workers=2)
    assert _tree_digest(fresh_out) == first


def test_vault_is_owner_only(planted) -> None:
    _, _, vault, _ = planted
    for path in [vault, *vault.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode in (0o700, 0o600), (path, oct(mode))


def test_submission_json_lists_every_output_with_its_true_sha256(planted) -> None:
    _, out, _, _ = planted
    listed = json.loads((out / "submission.json").read_text(encoding="utf-8"))["files"]
    assert listed == {k: v for k, v in _tree_digest(out).items() if k != "submission.json"}


def test_each_patient_has_its_own_keyed_date_shift_and_device_identity_is_gone(planted) -> None:
    # what dicognito gets wrong (one shared offset, serial number kept) and deid too (station, institution)
    corpus, out, _, _ = planted
    keys = Pseudonymiser(SECRET.encode(), SITE)
    shifts = {}
    for path in (out / "dicom").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        shifts.setdefault(ds.PatientID, set()).add(ds.StudyDate)
        assert ds.get("DeviceSerialNumber") in (None, "", "REMOVED")
        assert ds.get("StationName") in (None, "", "REMOVED")
        assert ds.get("InstitutionName") in (None, "", "REMOVED")
    expected = {
        keys.patient_id(mrn): {(date(2024, 3, 1) + timedelta(days=keys.shift_days(mrn))).strftime("%Y%m%d")}
        for mrn in corpus.mrns
    }
    assert shifts == expected
    assert len({next(iter(v)) for v in expected.values()}) == 2


# -- what the de-identification stage outputs: manifest and table dates, manifest facts --------------
def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _series_members(corpus: Corpus, vault: Path) -> dict[tuple[str, str, str], list[tuple[str, str]]]:
    """(patient_id, study_uid, series_uid) from each output's path -> [(input path, output path)]."""
    members: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for row in Vault(vault).read_ledger(NIGHT):
        if row.outcome == "deidentified":
            _, patient, study, series, _ = row.output_path.split("/")
            members.setdefault((patient, study, series), []).append((row.input_path, row.output_path))
    return members


def _header(path: Path) -> pydicom.Dataset:
    # force: the planted variants include a file without preamble and one without file meta
    return pydicom.dcmread(path, stop_before_pixels=True, force=True)


def _shifted(da: str, days: int) -> str:
    """A DICOM DA shifted by ``days``, as an ISO date (computed here, not by cohortpool)."""
    return (date(int(da[:4]), int(da[4:6]), int(da[6:8])) + timedelta(days=days)).isoformat()


def test_manifest_study_date_is_the_outputs_and_the_original_shifted_by_the_patients_key(planted) -> None:
    corpus, out, vault, _ = planted
    keys = Pseudonymiser(SECRET.encode(), SITE)
    members = _series_members(corpus, vault)
    manifest = _read_csv(out / "imaging_manifest.csv")
    assert {(r["patient_id"], r["study_uid"], r["series_uid"]) for r in manifest} == set(members)
    for row in manifest:
        series = members[(row["patient_id"], row["study_uid"], row["series_uid"])]
        output_dates = {str(_header(out / o).StudyDate) for _, o in series}
        assert output_dates == {row["study_date"].replace("-", "")}, (row["series_uid"], output_dates)
        for input_path, _ in series:
            original = _header(corpus.drop / input_path)
            mrn = str(original.PatientID)
            assert mrn in corpus.mrns
            assert row["patient_id"] == keys.patient_id(mrn)
            assert row["study_date"] == _shifted(str(original.StudyDate), keys.shift_days(mrn)), input_path
    # the two patients have different shifts, so a date shifted with the wrong key cannot pass
    assert len({keys.shift_days(m) for m in corpus.mrns}) == len(corpus.mrns)


def test_table_dates_are_exactly_the_original_shifted_by_the_patients_key(planted) -> None:
    corpus, out, _, _ = planted
    keys = Pseudonymiser(SECRET.encode(), SITE)
    sent = _read_csv(corpus.drop / "clinical.csv")
    clinical = _read_csv(out / "clinical.csv")
    assert [int(r["source_row"]) for r in clinical] == list(range(1, len(sent) + 1))
    for source, row in zip(sent, clinical, strict=True):
        shift = keys.shift_days(source["mrn"])
        assert row["patient_id"] == keys.patient_id(source["mrn"])
        expected = _shifted(source["first_exam_date"].replace("-", ""), shift)
        assert row["first_exam_date"] == expected, (source["first_exam_date"], shift)
    # reads.csv carries no date: the read date is dropped (contract section 2), never sent unshifted
    sent_reads = _read_csv(corpus.drop / "reads.csv")
    reads = _read_csv(out / "reads.csv")
    assert len(reads) == len(sent_reads) and all("date" not in column for column in reads[0])
    iso_date = re.compile(r"\d{4}-\d{2}-\d{2}")
    assert not [cell for row in reads for cell in row.values() if iso_date.search(cell)]


def _float(text: object) -> float | None:
    return None if text in (None, "") else float(str(text))


def test_manifest_facts_are_the_input_headers(planted) -> None:
    # model, TR, TE, rows and columns... of every series, against the original headers read by pydicom
    corpus, out, vault, _ = planted
    members = _series_members(corpus, vault)
    for row in _read_csv(out / "imaging_manifest.csv"):
        series = members[(row["patient_id"], row["study_uid"], row["series_uid"])]
        assert int(row["instance_count"]) == len(series)
        first = _header(corpus.drop / series[0][0])
        mr = first.Modality == "MR"
        assert row["modality"] == first.Modality
        echoed = corpus.echoed.get(series[0][0], set())  # the file's own identifiers: not released
        assert row["manufacturer"] == ("" if "Manufacturer" in echoed else first.Manufacturer)
        assert row["model"] == ("" if "ManufacturerModelName" in echoed else first.ManufacturerModelName)
        assert _float(row["field_strength"]) == (_float(first.get("MagneticFieldStrength")) if mr else None)
        assert _float(row["repetition_time"]) == _float(first.get("RepetitionTime"))
        assert _float(row["echo_time"]) == _float(first.get("EchoTime"))
        assert _float(row["slice_thickness"]) == _float(first.get("SliceThickness"))
        spacing = first.get("PixelSpacing") or first.get("ImagerPixelSpacing")  # DX: the imager's
        assert _float(row["pixel_spacing"]) == (float(spacing[0]) if spacing else None)
        assert (int(row["image_rows"]), int(row["image_columns"])) == (first.Rows, first.Columns)
    mr_rows = [r for r in _read_csv(out / "imaging_manifest.csv") if r["modality"] == "MR"]
    assert any(r["repetition_time"] and r["echo_time"] and r["field_strength"] for r in mr_rows)


def _non_square_mr(path: Path) -> None:
    """One MR instance whose rows, columns and row/column spacing all differ (the corpus' are square)."""
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID = pydicom.uid.MRImageStorage
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4.1", "1.2.3.4", "1.2.3.4.2"
    ds.PatientID, ds.PatientName, ds.AccessionNumber = "MRN-NSQ", "Roe^Ann", "ACC-NSQ"
    ds.Modality, ds.StudyDate = "MR", "20240110"
    ds.Manufacturer, ds.ManufacturerModelName = "Vendor Q", "Model 7"
    ds.SeriesDescription, ds.MagneticFieldStrength = "SAG T1", "3"
    ds.RepetitionTime, ds.EchoTime, ds.SliceThickness = "450", "12", "4"
    ds.PixelSpacing = ["0.5", "0.8"]
    ds.Rows, ds.Columns = 8, 12
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(8 * 12 * 2)
    path.parent.mkdir(parents=True)
    ds.save_as(path, enforce_file_format=True)


def test_manifest_facts_of_a_non_square_mr_series(tmp_path) -> None:
    drop = tmp_path / NIGHT
    source = drop / "dicom" / "IM0001.dcm"
    _non_square_mr(source)
    proc = run_deid(drop, tmp_path / "out", tmp_path / "vault", workers=1)
    assert proc.returncode == 0, proc.stderr
    [row] = _read_csv(tmp_path / "out" / "imaging_manifest.csv")
    original = _header(source)
    keys = Pseudonymiser(SECRET.encode(), SITE)
    assert (int(row["image_rows"]), int(row["image_columns"])) == (original.Rows, original.Columns)
    assert _float(row["pixel_spacing"]) == float(original.PixelSpacing[0])  # the row spacing
    assert _float(row["repetition_time"]) == float(original.RepetitionTime)
    assert _float(row["echo_time"]) == float(original.EchoTime)
    assert _float(row["field_strength"]) == float(original.MagneticFieldStrength)
    assert _float(row["slice_thickness"]) == float(original.SliceThickness)
    assert row["model"] == original.ManufacturerModelName and row["manufacturer"] == original.Manufacturer
    assert row["sequence_family"] == "T1" and row["instance_count"] == "1"
    assert row["study_date"] == _shifted(original.StudyDate, keys.shift_days(original.PatientID))


def _mr_series(corpus: Corpus, out: Path, vault: Path, folder: str) -> list[tuple[dict[str, str], str]]:
    """Manifest rows of the series whose inputs sit in ``folder``, with one output path each."""
    members = _series_members(corpus, vault)
    rows = []
    for row in _read_csv(out / "imaging_manifest.csv"):
        series = members[(row["patient_id"], row["study_uid"], row["series_uid"])]
        if any(Path(i).parent.name == folder for i, _ in series):
            rows.append((row, series[0][1]))
    return rows


def test_sequence_family_of_the_sag_t2_series_is_t2(planted) -> None:
    corpus, out, vault, _ = planted
    rows = _mr_series(corpus, out, vault, "2_SAG_T2")
    assert len(rows) == len(corpus.mrns)  # one per patient
    assert [r["sequence_family"] for r, _ in rows] == ["T2"] * len(rows)


def test_sequence_family_comes_from_the_header_before_cleaning(planted) -> None:
    # gb18030_mr has no TR/TE: only its descriptors tell the family, and cleaning removes them
    corpus, out, vault, _ = planted
    [(row, output)] = _mr_series(corpus, out, vault, "9_gb18030_mr")
    assert sequence_family(_header(out / output)) == "other"  # what the cleaned header would give
    assert row["sequence_family"] in ("T1", "T2")


def test_sequence_family_of_the_gb18030_mr_series_follows_its_series_description(planted) -> None:
    corpus, out, vault, _ = planted
    [(row, _)] = _mr_series(corpus, out, vault, "9_gb18030_mr")
    assert row["sequence_family"] == "T2"


# -- dciodvfy on every planted variant: no new errors --------------------------------------------------
#: the variants of the corpus that are de-identified (folder 9_<label>, plus the plain CT and MR series)
VARIANTS = {"ct", "mr", "gb18030", "gb18030_mr", "utf8", "iso2022", "implicit", "bigendian", "deflated",
            "jpeg", "nopreamble", "nometa", "dx", "cr", "enhanced_ct", "enhanced_mr"}  # fmt: skip


def _variant(input_path: str) -> str:
    folder = Path(input_path).parent.name
    if folder.startswith("9_"):
        return folder[2:]
    return {"1": "ct", "2": "mr"}[folder.split("_", 1)[0]]


def _dciodvfy_readable(path: Path, scratch: Path) -> Path:
    """``path``, or an inflated copy of it: dciodvfy cannot read a deflated data set at all, and
    comparing two "read failed" reports would prove nothing. The copy is the same bytes, inflated,
    under an explicit VR little endian file meta."""
    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except InvalidDicomError:  # no preamble or no file meta: not deflated (which needs the meta)
        return path
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return path
    data = path.read_bytes()
    start = 144 + int.from_bytes(data[140:144], "little")  # after the file meta group
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = DicomBytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)
    target = scratch / f"{path.parent.name}-{path.name}"
    target.write_bytes(
        b"\0" * 128 + b"DICM" + buffer.getvalue() + zlib.decompressobj(-15).decompress(data[start:])
    )
    return target


def _dciodvfy_errors(path: Path) -> set[str]:
    proc = subprocess.run(
        ["dciodvfy", str(path)], capture_output=True, text=True, errors="replace", check=False
    )
    report = proc.stdout + proc.stderr
    assert "read failed" not in report, (path.name, report[-2000:])  # never a vacuous comparison
    lines = report.splitlines()
    return {re.sub(r"\[\d+\] = <[^>]*>", "= <value>", line) for line in lines if line.startswith("Error")}


def _new_dciodvfy_errors(planted, scratch: Path) -> dict[str, set[str]]:
    """Variant -> errors dciodvfy reports for the output of one file of that variant, not for its input."""
    corpus, out, vault, _ = planted
    new: dict[str, set[str]] = {}
    for row in Vault(vault).read_ledger(NIGHT):
        variant = _variant(row.input_path) if row.outcome == "deidentified" else ""
        if not variant or variant in new:
            continue
        source = _dciodvfy_readable(corpus.drop / row.input_path, scratch)
        output = _dciodvfy_readable(out / row.output_path, scratch)
        new[variant] = _dciodvfy_errors(output) - _dciodvfy_errors(source)
    assert set(new) >= VARIANTS, VARIANTS - set(new)
    return new


def test_dciodvfy_finds_no_new_errors_in_any_planted_variant(planted, tmp_path) -> None:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dicom3tools (dciodvfy) is not installed")
    new = _new_dciodvfy_errors(planted, tmp_path)
    assert new == {v: set() for v in new}


def test_kept_text_that_repeats_the_files_own_identifiers_gets_a_dummy_and_the_rest_is_kept(planted) -> None:
    # a name, record number, accession number or birth date typed into Manufacturer, Model, Software
    # Versions, a code string or a sequence name, in ISO_IR 100, UTF-8, GB18030 and ISO 2022 files
    corpus, out, vault, _ = planted
    outputs = {row.input_path: row.output_path for row in Vault(vault).read_ledger(NIGHT) if row.output_path}
    assert set(corpus.echoed) <= set(outputs)
    for source, keywords in corpus.echoed.items():
        before, after = _header(corpus.drop / source), _header(out / outputs[source])
        for keyword in keywords:
            assert after.get(keyword) == "REMOVED", (source, keyword)
        for keyword in {"Manufacturer", "ManufacturerModelName", "SoftwareVersions"} - keywords:
            assert after.get(keyword) == before.get(keyword), (source, keyword)  # equipment text stays
    kept = [_header(out / o) for i, o in outputs.items() if i not in corpus.echoed and i.endswith(".dcm")]
    assert kept and all(ds.Manufacturer == "ACME" for ds in kept)
    summary = (vault / "ledger" / f"{NIGHT}.summary.csv").read_text(encoding="utf-8")
    echoes = {r["keyword"]: int(r["count"]) for r in csv.DictReader(summary.splitlines())
              if r["what"] == "identifier echoed"}  # fmt: skip
    assert echoes == {"Manufacturer": 3, "ManufacturerModelName": 2, "SoftwareVersions": 1,
                      "BodyPartExamined": 1, "SequenceName": 1}  # fmt: skip


# -- the allow-list's audit trail: what was removed, by keyword, without values ------------------------
def test_the_nights_summary_counts_every_planted_unlisted_attribute_by_keyword_and_holds_no_value(
    planted, tmp_path
) -> None:
    corpus, _, vault, _ = planted
    path = vault / "ledger" / f"{NIGHT}.summary.csv"
    text = path.read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    removed = {r["keyword"] or r["tag"]: int(r["count"]) for r in rows if r["what"] == "removed"}
    for vr, (_, keyword) in UNLISTED_MODULE_ATTRIBUTES.items():
        assert removed.get(keyword, 0) > 0, (vr, keyword)
    for base in UNKNOWN_STANDARD_TAGS:  # unknown to the dictionary: named by tag
        assert removed.get(f"({base >> 16:04X},{base & 0xFFFF:04X})", 0) > 0
    shutil.copy(path, tmp_path / path.name)  # the summary alone (the ledger beside it names inputs)
    assert find_leaks(tmp_path, corpus.literal_tokens) == []  # counts only: no planted value
    assert path.stat().st_mode & 0o777 == 0o600
