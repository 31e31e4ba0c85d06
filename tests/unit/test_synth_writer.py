"""The consortium's folder layout, its links between tables and images, planted defects, determinism."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from synth_support import NIGHT, drop, read_csv, synthesize, tree_hashes

from cohortpool.synth import write_consortium
from cohortpool.synth.defects import KINDS
from cohortpool.synth.font import read_line
from cohortpool.synth.pixels import LABEL_ORIGIN, LABEL_SCALE

SITES = ("site01", "site02", "site03")


# one worker synthesizes the consortium once for all of these modules (make test runs --dist loadgroup)
pytestmark = pytest.mark.xdist_group("synth_consortium")


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return synthesize(tmp_path_factory)


@pytest.fixture(scope="module")
def truth(consortium: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    return json.loads((consortium[0] / "_truth.json").read_text(encoding="utf-8"))["defects"]


@pytest.fixture(scope="module")
def headers(consortium: tuple[Path, dict[str, Any]], truth: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The header (no pixels) of one intact file per series folder, by site."""
    out, _ = consortium
    broken = {d["file"] for d in truth if "file" in d}
    found: dict[str, list[Any]] = {}
    for site in SITES:
        found[site] = []
        for series in sorted(p for p in (drop(out, site) / "dicom").glob("*/*/*") if p.is_dir()):
            intact = [f for f in sorted(series.glob("*.dcm")) if f.relative_to(out).as_posix() not in broken]
            if intact:
                found[site].append((intact[0], dcmread(intact[0], stop_before_pixels=True)))
    return found


def test_summary_lists_sites_and_is_json(consortium: tuple[Path, dict[str, Any]]) -> None:
    out, summary = consortium
    json.dumps(summary)
    assert summary["site_ids"] == list(SITES)
    assert summary["night"] == NIGHT
    for site in summary["sites"]:
        assert Path(site["drop"]) == drop(out, site["site_id"])
        assert site["clinical_rows"] == len(read_csv(Path(site["drop"]) / "clinical.csv"))


def test_each_drop_has_dicom_and_both_tables_with_contract_columns(
    consortium: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = consortium
    for site in SITES:
        d = drop(out, site)
        assert sorted(p.name for p in d.iterdir()) == ["clinical.csv", "dicom", "reads.csv"]
        header = (d / "clinical.csv").read_bytes().split(b"\n")[0]
        assert header.startswith(b"mrn,patient_name,birth_date,sex,")
        assert not (d / "reads.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # no BOM
        assert b"\r\n" not in (d / "reads.csv").read_bytes()


def test_folder_names_carry_name_mrn_date_and_accession(
    consortium: tuple[Path, dict[str, Any]], headers: dict[str, list[Any]]
) -> None:
    out, _ = consortium
    for site in SITES:
        for path, ds in headers[site][:40]:
            patient, study, series, name = path.relative_to(drop(out, site) / "dicom").parts
            assert patient.endswith(f"_{ds.PatientID}")
            assert patient.startswith(str(ds.PatientName.family_name).upper())
            assert study == f"{ds.StudyDate}_{ds.AccessionNumber}"
            assert series.startswith(f"{ds.SeriesNumber}_")
            assert name == f"IM{int(ds.InstanceNumber):04d}.dcm"


def test_every_patient_has_xr_ct_mr_studies_and_reads_link_to_them(
    consortium: tuple[Path, dict[str, Any]], headers: dict[str, list[Any]], truth: list[dict[str, Any]]
) -> None:
    out, _ = consortium
    for site in SITES:
        studies: dict[str, dict[str, str]] = defaultdict(dict)  # mrn -> accession -> modality
        for _, ds in headers[site]:
            if ds.Modality == "OT":  # the planted screenshot shares its CT study's accession
                continue
            kind = "XR" if ds.Modality in ("DX", "CR") else ds.Modality
            studies[ds.PatientID][ds.AccessionNumber] = kind
        clinical = read_csv(drop(out, site) / "clinical.csv")
        assert set(studies) == {r["mrn"] for r in clinical}
        for mrn, accs in studies.items():
            assert sorted(accs.values()) == ["CT", "MR", "XR"], mrn
        all_accessions = [a for accs in studies.values() for a in accs]
        assert len(all_accessions) == len(set(all_accessions))
        orphans = {d["row"] for d in truth if d["site_id"] == site and d["kind"] == "orphan_read"}
        for row_no, r in enumerate(read_csv(drop(out, site) / "reads.csv"), start=1):
            if row_no in orphans:
                assert r["mrn"] not in studies
                assert r["accession_number"] not in all_accessions
                continue
            assert studies[r["mrn"]][r["accession_number"]] == r["modality"], (site, row_no)


def test_dicom_identifiers_and_dates_agree_with_clinical_csv(
    consortium: tuple[Path, dict[str, Any]], headers: dict[str, list[Any]], truth: list[dict[str, Any]]
) -> None:
    out, _ = consortium
    for site in SITES:
        planted_rows = {d["row"] for d in truth if d["site_id"] == site and d.get("table") == "clinical"}
        clinical = {
            r["mrn"]: r
            for i, r in enumerate(read_csv(drop(out, site) / "clinical.csv"), start=1)
            if i not in planted_rows
        }
        first_dates: dict[str, set[str]] = defaultdict(set)
        for _, ds in headers[site]:
            row = clinical.get(ds.PatientID)
            if row is None:
                continue
            assert ds.PatientBirthDate == row["birth_date"].replace("-", "")
            assert ds.PatientSex == row["sex"]
            assert ds.StudyDate >= row["first_exam_date"].replace("-", "")
            name = ds.PatientName
            display = (
                name.ideographic.replace("^", "")
                if site == "site01"
                else f"{name.given_name} {name.family_name}"
            )
            assert display == row["patient_name"]
            first_dates[ds.PatientID].add(ds.StudyDate)
        for mrn, dates in first_dates.items():
            assert min(dates) == clinical[mrn]["first_exam_date"].replace("-", "")


def test_site01_is_clean_and_each_defect_kind_is_planted_once(truth: list[dict[str, Any]]) -> None:
    assert not [d for d in truth if d["site_id"] == "site01"]
    assert sorted(d["kind"] for d in truth) == sorted(k for k, _, _ in KINDS)
    assert {d["site_id"] for d in truth} == {"site02", "site03"}
    for d in truth:
        assert d["night"] == NIGHT
        assert ("table" in d) != ("file" in d)
        assert d["stage"] == ("deid" if "file" in d else "validate")
        assert d["reason"]


def test_truth_rows_point_at_the_planted_values(
    consortium: tuple[Path, dict[str, Any]], truth: list[dict[str, Any]]
) -> None:
    out, _ = consortium
    for d in (d for d in truth if "table" in d):
        rows = read_csv(drop(out, d["site_id"]) / f"{d['table']}.csv")
        row = rows[d["row"] - 1]
        assert row["mrn"] == d["mrn"]
        if d["column"] is not None:
            assert row[d["column"]] == d["value"]
        clinical_mrns = {r["mrn"] for r in read_csv(drop(out, d["site_id"]) / "clinical.csv")}
        if d["kind"] == "duplicate_read":
            assert rows[d["row"] - 2] == row
        elif d["kind"] == "orphan_read":
            assert row["mrn"] not in clinical_mrns
        elif d["kind"] == "birth_after_exam":
            assert row["birth_date"] > row["first_exam_date"]
        elif d["kind"] == "unknown_level":
            assert row["level"] == "L7"


def test_truth_files_are_broken_the_way_they_say(
    consortium: tuple[Path, dict[str, Any]], truth: list[dict[str, Any]]
) -> None:
    out, _ = consortium
    files = {d["kind"]: (out / d["file"], d) for d in truth if "file" in d}
    truncated, _ = files["truncated_dicom"]
    with pytest.raises((InvalidDicomError, EOFError, ValueError, OSError)):
        ds = dcmread(truncated)
        _ = ds.pixel_array  # a cut inside the header or the pixels: either way unusable
    thumbs, _ = files["non_dicom_file"]
    assert thumbs.name == "Thumbs.db"
    assert thumbs.read_bytes()[128:132] != b"DICM"
    with pytest.raises(InvalidDicomError):
        dcmread(thumbs)
    shot_path, entry = files["burned_in_screenshot"]
    shot = dcmread(shot_path)
    assert shot.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert shot.BurnedInAnnotation == "YES"
    assert shot.PatientID == entry["mrn"]
    pixels = np.frombuffer(shot.PixelData, dtype=np.uint8).reshape(shot.Rows, shot.Columns)
    y0, x0 = LABEL_ORIGIN
    name = f"{shot.PatientName.family_name} {shot.PatientName.given_name}".upper()
    burned = read_line(pixels[y0:, x0:] == 255, len(name), scale=LABEL_SCALE)
    assert burned == name


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"sites": 3, "max_patients": 4}
    write_consortium(tmp_path / "a", seed=11, **kwargs)
    write_consortium(tmp_path / "b", seed=11, **kwargs)
    write_consortium(tmp_path / "c", seed=12, **kwargs)
    a, b, c = (tree_hashes(tmp_path / x) for x in "abc")
    assert a == b
    assert len(a) > 100
    assert a != c
    # rewriting into an existing folder replaces the drops and gives the same bytes again
    write_consortium(tmp_path / "a", seed=11, **kwargs)
    assert tree_hashes(tmp_path / "a") == b


def test_night_names_the_drop_and_bounds_the_exam_dates(tmp_path: Path) -> None:
    summary = write_consortium(tmp_path, sites=1, max_patients=3, night=dt.date(2024, 6, 30))
    d = tmp_path / "site01" / "2024-06-30"
    assert summary["sites"][0]["drop"] == str(d)
    for row in read_csv(d / "clinical.csv"):
        assert row["first_exam_date"] < "2024-06-30"
    assert json.loads((tmp_path / "_truth.json").read_text())["defects"] == []


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sites"):
        write_consortium(tmp_path, sites=0)
    with pytest.raises(ValueError, match="seed"):
        write_consortium(tmp_path, seed=-1)


def test_output_does_not_depend_on_the_process_hash_seed(tmp_path: Path) -> None:
    args = ["--sites", "2", "--seed", "5", "--max-patients", "2"]
    runs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-m", "cohortpool", "synth", str(out), *args],
            check=True,
            env=env,
            capture_output=True,
        )
        runs.append(tree_hashes(out))
    assert runs[0] == runs[1]
