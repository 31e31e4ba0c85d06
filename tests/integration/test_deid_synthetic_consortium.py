"""`cohortpool deid` over each site of the synthetic consortium, checked against ``_truth.json``.

Every file the truth plants for the deid stage is quarantined, everything else is de-identified,
input count = de-identified + quarantined + duplicates, no identifier from the site's own tables or
folder names survives, and dciodvfy finds no new errors in the outputs.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from cohortpool.deid import Vault

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from deid_corpus import shared_build

pytestmark = pytest.mark.integration
SECRET = "d3a8a68c8a6ff8294a1ff022a6b101711ba2d309d80c0a1ca1c567d164c8f2e3"
NIGHT = "2025-03-01"
SITES = ("site01", "site02", "site03")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET}
    return subprocess.run(
        [sys.executable, "-m", "cohortpool", *args], capture_output=True, text=True, env=env
    )


def _build(root: Path) -> tuple[Path, dict, dict]:
    made = _cli("synth", str(root / "landing"), "--sites", "3", "--seed", "7", "--max-patients", "6")
    if made.returncode != 0:
        raise RuntimeError(f"cohortpool synth failed: {made.stderr[-2000:]}")
    truth = json.loads((root / "landing" / "_truth.json").read_text(encoding="utf-8"))
    runs = {}
    for site in SITES:
        runs[site] = _cli(
            "deid", str(root / "landing" / site / NIGHT), str(root / "out" / site), "--site", site,
            "--vault", str(root / "vault" / site), "--workers", "2",
        )  # fmt: skip
    return root, truth, runs


@pytest.fixture(scope="session")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    return shared_build(tmp_path_factory.getbasetemp(), "deid_consortium", _build)


@pytest.mark.parametrize("site", SITES)
def test_ledger_matches_the_planted_truth(consortium, site: str) -> None:
    root, truth, runs = consortium
    planted = {
        d["file"].split(f"{NIGHT}/", 1)[1]: d["kind"]
        for d in truth["defects"]
        if d["stage"] == "deid" and d["site_id"] == site
    }
    rows = Vault(root / "vault" / site).read_ledger(NIGHT)
    drop = root / "landing" / site / NIGHT
    inputs = sorted(
        p.relative_to(drop).as_posix()
        for p in drop.rglob("*")
        if p.is_file() and p.name not in ("clinical.csv", "reads.csv")
    )
    assert sorted(r.input_path for r in rows) == inputs  # every input file accounted for, once
    quarantined = {r.input_path for r in rows if r.outcome == "quarantined"}
    assert quarantined == set(planted), {r.input_path: r.reason for r in rows if r.outcome == "quarantined"}
    assert all(r.outcome == "deidentified" for r in rows if r.input_path not in planted)
    summary = json.loads((root / "out" / site / "submission.json").read_text(encoding="utf-8"))
    counts = summary["counts"]
    assert counts["input_files"] == counts["deidentified"] + counts["quarantined"] + counts["duplicate"]
    assert counts["input_files"] == len(inputs)
    assert runs[site].returncode == (1 if planted else 0), runs[site].stderr


@pytest.mark.parametrize("site", SITES)
def test_no_identifier_from_the_site_survives(consortium, site: str) -> None:
    root, _, runs = consortium
    drop = root / "landing" / site / NIGHT
    secrets: set[str] = set()
    with (drop / "clinical.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            secrets |= {row["mrn"], row["address"], row["phone"], row["birth_date"]}
            secrets.add(row["birth_date"].replace("-", ""))  # the DICOM DA form
            secrets |= {part for part in re.split(r"[\s^,]+", row["patient_name"]) if len(part) > 3}
    with (drop / "reads.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            secrets |= {row["accession_number"], row["reader"]}
    secrets |= {p.name for p in (drop / "dicom").iterdir()}  # NAME_MRN folder names
    secrets.discard("")
    out = root / "out" / site
    hits = []
    for path in out.rglob("*"):
        relative = path.relative_to(out).as_posix()
        hits += [f"path {relative}: {s}" for s in secrets if s in relative]
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                for encoding in ("utf-8", "gb18030", "utf-16-le"):
                    if secret.encode(encoding) in data:
                        hits.append(f"{relative}: {secret!r} ({encoding})")
    log = runs[site].stdout + runs[site].stderr
    hits += [f"log: {s}" for s in secrets if s in log]
    assert hits == []


def _errors(path: Path) -> set[str]:
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    lines = (proc.stdout + proc.stderr).splitlines()
    return {re.sub(r"\[\d+\] = <[^>]*>", "= <value>", line) for line in lines if line.startswith("Error")}


@pytest.mark.parametrize("site", SITES)
def test_dciodvfy_finds_no_new_errors(consortium, site: str) -> None:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dicom3tools (dciodvfy) is not installed")
    root, _, _ = consortium
    rows = [r for r in Vault(root / "vault" / site).read_ledger(NIGHT) if r.outcome == "deidentified"]
    seen_modalities: dict[str, int] = {}
    for row in rows:
        source = root / "landing" / site / NIGHT / row.input_path
        modality = str(pydicom.dcmread(source, stop_before_pixels=True).get("Modality", ""))
        if seen_modalities.get(modality, 0) >= 2:
            continue
        seen_modalities[modality] = seen_modalities.get(modality, 0) + 1
        new = _errors(root / "out" / site / row.output_path) - _errors(source)
        assert new == set(), (modality, new)
    assert len(seen_modalities) >= 3


def test_manifest_has_every_series_and_the_mr_sequence_families(consortium) -> None:
    root, _, _ = consortium
    families, modalities = set(), set()
    for site in SITES:
        out = root / "out" / site
        with (out / "imaging_manifest.csv").open(encoding="utf-8") as handle:
            manifest = list(csv.DictReader(handle))
        series = {p.parent.relative_to(out / "dicom").as_posix() for p in (out / "dicom").rglob("*.dcm")}
        assert {f"{r['patient_id']}/{r['study_uid']}/{r['series_uid']}" for r in manifest} == series
        total = sum(int(r["instance_count"]) for r in manifest)
        assert total == len(list((out / "dicom").rglob("*.dcm")))
        families |= {r["sequence_family"] for r in manifest if r["modality"] == "MR"}
        modalities |= {r["modality"] for r in manifest}
        assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["study_date"]) for r in manifest)
    assert {"T1", "T2", "FS"} <= families
    assert {"CT", "MR"} <= modalities
