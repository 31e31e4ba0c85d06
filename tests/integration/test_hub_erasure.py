"""Withdrawal through the real hub flow: sites' submissions made by ``cohortpool deid`` from the synthetic
consortium, received from the inbox, verified, validated (GX, Data Docs), loaded. After the night that
withdraws a patient, no file of the hub's stores holds their values; running the hub again (also with its
task cache gone, so verification and validation really run) refuses nothing and changes nothing; an older
night arriving late is erased too, and the result is the one of a hub that got every night at once."""

from __future__ import annotations

import csv
import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cohortpool.pipeline.records import NightSummary, summary_of
from cohortpool.synth import write_consortium
from cohortpool.warehouse import checksum
from erasure_support import allowed, holding, stores

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("prefect")]

SITE = "site01"


def _deid(drop: Path, out: Path, vault: Path, secret: str) -> None:
    options = ["--site", SITE, "--vault", str(vault), "--workers", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "cohortpool", "deid", str(drop), str(out), *options],
        capture_output=True,
        text=True,
        env={**os.environ, "COHORTPOOL_SECRET": secret},
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: the consortium plants defects


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, consortium_secret: str) -> dict[str, Path]:
    """Three nights of site01 as submissions: the first as synthesised, the next with its first patient
    withdrawn, and an older one (the same patients) that will arrive late."""
    root = tmp_path_factory.mktemp("erasure")
    write_consortium(root / "landing", sites=1, max_patients=3)
    first = next(p for p in (root / "landing" / SITE).iterdir() if not p.name.startswith("."))
    day = datetime.date.fromisoformat(first.name)
    drops = {"first": first}
    for name, night in (
        ("withdraws", day + datetime.timedelta(days=1)),
        ("late", day - datetime.timedelta(days=1)),
    ):
        drops[name] = shutil.copytree(first, root / name / SITE / night.isoformat())
    with (first / "clinical.csv").open(encoding="utf-8", newline="") as handle:
        mrn = next(csv.DictReader(handle))["mrn"]
    (drops["withdraws"] / "withdrawn.csv").write_text(f"mrn\n{mrn}\n", encoding="utf-8")
    out = {}
    for name, drop in drops.items():
        out[name] = root / "made" / SITE / drop.name
        _deid(drop, out[name], root / "vault", consortium_secret)
    return out


def _gone(made: dict[str, Path]) -> str:
    with (made["withdraws"] / "withdrawn.csv").open(encoding="utf-8", newline="") as handle:
        return next(csv.DictReader(handle))["patient_id"]


def _run_hub(
    out: Path, inbox: Path | None, storage: Path, failed: tuple[tuple[str, str, str], ...] = ()
) -> NightSummary:
    from flows.hub import hub
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: storage}):
        state = hub(out_dir=out, inbox_dir=inbox, return_state=True)
    summary = summary_of(state.result(raise_on_failure=False))
    assert summary is not None, state
    assert tuple((o.site_id, o.night, o.failed_step) for o in summary.outcomes if o.failed_step) == failed
    return summary


def _push(inbox: Path, *submissions: Path) -> Path:
    for made in submissions:
        shutil.copytree(made, inbox / SITE / made.name)
    return inbox


def _holding(out: Path, pseudonym: str) -> list[str]:
    """Files of the stores holding the pseudonym, but those allowed to name a withdrawn patient."""
    return [rel for rel in holding(out, pseudonym) if not allowed(rel)]


def test_the_hub_erases_a_withdrawn_patient_from_its_files_and_runs_again_unchanged(
    prefect_harness: None, made: dict[str, Path], tmp_path: Path
) -> None:
    gone = _gone(made)
    out, storage = tmp_path / "hub", tmp_path / "results"
    _run_hub(out, _push(tmp_path / "inbox1", made["first"]), storage)
    assert _holding(out, gone)  # night one holds the patient everywhere: tables, DICOM, accepted rows

    summary = _run_hub(out, _push(tmp_path / "inbox2", made["withdraws"]), storage)
    assert _holding(out, gone) == []
    first = out / "submissions" / SITE / made["first"].name
    assert not (first / "dicom" / gone).exists() and (first / "erasure.json").is_file()
    assert any(o.load is not None and o.load.erased_files for o in summary.outcomes)
    files, sums = stores(out), checksum(out / "warehouse.duckdb")

    # the hub again: from its task cache, then with the cache gone (verification and validation run)
    _run_hub(out, None, storage)
    _run_hub(out, None, tmp_path / "no-cache")
    assert stores(out) == files
    assert checksum(out / "warehouse.duckdb") == sums
    assert not (out / "rejected").exists()

    # an older night arrives late, still carrying the patient: erased as soon as it is loaded
    _run_hub(out, _push(tmp_path / "inbox3", made["late"]), storage)
    assert _holding(out, gone) == []
    # the same as a hub that got the three nights at once, in night order
    other = tmp_path / "other"
    _run_hub(other, _push(tmp_path / "inbox4", *made.values()), tmp_path / "other-results")
    assert checksum(other / "warehouse.duckdb") == checksum(out / "warehouse.duckdb")
    assert stores(other) == stores(out)

    # a copy carrying the patient put into OUT/submissions by hand, under another night: refused by the
    # run's verification into OUT/rejected, where no load of the site follows; the run's pass erases it
    night = "2020-01-01"
    shutil.copytree(made["first"], out / "submissions" / SITE / night)
    _run_hub(out, None, storage, failed=((SITE, night, "verify"),))
    assert (out / "rejected" / SITE / night / "erasure.json").is_file()
    assert _holding(out, gone) == []
