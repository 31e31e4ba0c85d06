"""The nightly run (`cohortpool run`, a real subprocess with its own Prefect API) under attack and faults.

One uninterrupted run over a small consortium is the reference. Its landing folder also holds a
configured site whose folder is gone (a dangling mount) and a site nobody configured. Then:

- security: every identifier of the drops (MRNs, names, accession numbers, addresses, phones, readers)
  is grepped in everything the hub or Prefect sees (submissions, validated batches, warehouse, report,
  Prefect's database with its logs, artifacts and run names, result cache, the terminal): zero hits; the
  secret is written nowhere; the vault is owner-only;
- faults: the run is SIGKILLed (whole process group, Prefect server included) part-way through
  de-identification (part of ``dicom/`` placed, the workers' staging folder present), with a validated
  batch half written (its first table in the staging folder, no ``summary.json``) and with the load's
  transaction open, rerun each time: the end state equals the reference (warehouse content checksum,
  report bytes, rows, submission files, the vault's ledgers and crosswalks); the disk filling up fails
  the run with a clear message and nothing half-written is taken for done, and the run after freeing
  space catches up.

The planted DICOM corpus is scanned in ``test_nightly_phi.py``; the minimum k in ``test_nightly_release.py``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from support import SECRET, drop_identifiers, finish_run, start_run

from cohortpool.synth import write_consortium

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("hardening-nightly")]
NIGHT = "2025-03-01"


def _kill_when(proc: subprocess.Popen[str], ready: Path, timeout: float = 300) -> None:
    """SIGKILL the run's whole process group once ``ready`` exists (the run is then paused there)."""
    deadline = time.monotonic() + timeout
    while not ready.exists():
        assert proc.poll() is None, f"the run ended before {ready} appeared: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{ready} never appeared"
        time.sleep(0.1)
    time.sleep(1.0)  # inside the test pause: the step is half done
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith(skip)
    }


def _landing(root: Path) -> Path:
    landing = root / "landing"
    write_consortium(landing, sites=2, max_patients=3)
    (landing / "_truth.json").unlink()
    os.symlink(root / "unmounted-share", landing / "site03")  # a configured site whose folder is gone
    (landing / "site09" / NIGHT / "dicom").mkdir(parents=True)  # a site nobody configured
    (landing / "site09" / NIGHT / "clinical.csv").write_text("mrn\nUNCONFIGURED-MRN-1\n", encoding="utf-8")
    return landing


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int, str]:
    root = tmp_path_factory.mktemp("nightly")
    landing = _landing(root)
    out = root / "out"
    code, text = finish_run(start_run(landing, out))
    return landing, out, code, text


def test_the_reference_run_completes_the_readable_sites_and_names_the_missing_one(reference) -> None:
    _landing_dir, out, code, text = reference
    assert code == 3, text  # site03's folder is gone: failed at scan
    assert "Traceback" not in text
    assert (out / "report" / "report.html").is_file()
    for site in ("site01", "site02"):
        assert (out / "submissions" / site / NIGHT / "submission.json").is_file(), site
    # the dangling mount fails its site with the reason; the others went on
    assert "site03: failed at scan: SiteFolderError: site site03: landing folder" in text
    assert "is a link to something that is gone" in text
    assert "nothing new from: site03" not in text
    assert "not declared in the registry, left alone: site09" in text
    assert not (out / "submissions" / "site09").exists()


def test_no_identifier_reaches_the_hub_prefect_or_the_terminal(reference) -> None:
    landing, out, _code, text = reference
    tokens = drop_identifiers(landing)
    assert len(tokens) > 20
    private = ("vault/", "state/")  # stay at the site: the negative control below proves the scan
    hits = []
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out).as_posix()
        if relative.startswith(private):
            continue
        data = path.read_bytes() if path.is_file() else b""
        for token in tokens:
            needles = {token.encode("utf-8"), token.encode("gb18030"), token.replace(" ", "^").encode()}
            if token in relative or any(n in data for n in needles):
                hits.append(f"{relative}: {token}")
    hits += [f"terminal: {t}" for t in tokens if t in text]
    assert hits == []
    # negative control: the same scan sees the identifiers where they belong (the site's crosswalk)
    crosswalk = (out / "vault" / "site01" / "crosswalk.csv").read_text(encoding="utf-8")
    assert sum(t in crosswalk for t in tokens) >= 3
    # and Prefect really recorded logs, artifacts and runs in the database that was scanned
    databases = list((out / ".prefect").rglob("prefect.db"))
    assert databases, "no Prefect database under OUT/.prefect"
    with sqlite3.connect(databases[0]) as con:
        assert con.execute("select count(*) from log").fetchone()[0] > 10
        assert con.execute("select count(*) from artifact").fetchone()[0] >= 2
        assert con.execute("select count(*) from task_run").fetchone()[0] > 5


def test_the_secret_is_written_nowhere_and_the_vault_is_owner_only(reference) -> None:
    _landing_dir, out, _code, text = reference
    assert SECRET not in text
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    vault = out / "vault"  # holds one private vault per site (the folder itself names only the sites)
    for path in [p for p in vault.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def test_each_submission_reports_its_k_anonymity(reference) -> None:
    import json

    _landing_dir, out, _code, _text = reference
    for site in ("site01", "site02"):
        privacy = json.loads((out / "submissions" / site / NIGHT / "submission.json").read_text())["privacy"]
        assert privacy["k_anonymity"] >= 1 and privacy["release_blocked"] is False


def _state(out: Path) -> tuple[str, dict[str, str], dict[str, int]]:
    from cohortpool.warehouse import checksum, connect

    con = connect(out / "warehouse.duckdb", read_only=True)
    try:
        rows = {
            t: con.execute(f"select count(*) from raw.{t}").fetchone()[0]
            for t in ("clinical", "reads", "imaging_manifest", "batches", "quarantine")
        }
    finally:
        con.close()
    return checksum(out / "warehouse.duckdb"), _tree(out / "report"), rows


def _dicom_count(submission: Path) -> int:
    return sum(1 for _ in (submission / "dicom").rglob("*.dcm"))


def test_sigkill_during_deid_validation_and_load_then_rerun_equals_an_uninterrupted_run(
    reference, tmp_path: Path
) -> None:
    from cohortpool.deid.run import STAGING

    landing, ref_out, _code, _text = reference
    out = tmp_path / "out"
    site, ref_site = (o / "submissions" / "site01" / NIGHT for o in (out, ref_out))
    # killed with the workers at it: part of dicom/ placed, their staging folder still there
    _kill_when(start_run(landing, out, pause_at="deidentify"), site / "dicom")
    assert 0 < _dicom_count(site) < _dicom_count(ref_site)
    assert (site / STAGING).is_dir()
    assert not (site / "submission.json").exists()
    # killed while the validated batch is half written: its first table is in the staging folder
    batch = out / "validated" / "site01" / NIGHT
    staging = batch.with_name(f"{NIGHT}.partial")
    _kill_when(start_run(landing, out, pause_at="validate"), staging / "accepted" / "clinical.parquet")
    assert not batch.exists()
    assert not (staging / "accepted" / "imaging_manifest.parquet").exists()
    assert not (staging / "summary.json").exists()
    # killed with the load's transaction open
    _kill_when(start_run(landing, out, pause_at="load"), out / "warehouse.duckdb")
    code, text = finish_run(start_run(landing, out))
    assert code == 3, text
    assert _state(out) == _state(ref_out)
    assert _tree(out / "submissions") == _tree(ref_out / "submissions")  # no file lost, doubled or stale
    assert not list(out.glob("submissions/*/*/" + STAGING)) and not list(out.glob("validated/*/*.partial"))
    for name in ("site01", "site02"):
        for kept in (f"ledger/{NIGHT}.csv", "crosswalk.csv"):
            mine, theirs = (o / "vault" / name / kept for o in (out, ref_out))
            assert mine.read_text(encoding="utf-8") == theirs.read_text(encoding="utf-8"), (name, kept)


def _mount_tmpfs(target: Path, size: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True
    )
    return done.returncode == 0


def test_a_full_disk_fails_the_run_clearly_and_the_next_run_catches_up(reference, tmp_path: Path) -> None:
    landing, ref_out, _code, _text = reference
    out = tmp_path / "small"
    if not _mount_tmpfs(out, "600k"):
        pytest.skip("cannot mount a size-limited tmpfs here (needs root or a user namespace)")
    try:
        home = tmp_path / "prefect-home"  # Prefect's own database on the big disk: the outputs fill up
        code, text = finish_run(start_run(landing, out, home))
        assert code == 3, text
        assert "No space left on device" in text, text  # Prefect prints the failed task's traceback too
        # nothing half-written is taken for done: a submission manifest lists only complete files
        from cohortpool.contract.files import sha256_file

        for manifest in out.glob("submissions/*/*/submission.json"):
            import json

            for name, digest in json.loads(manifest.read_text())["files"].items():
                assert sha256_file(manifest.parent / name) == digest, name
        subprocess.run(["mount", "-o", "remount,size=64m", str(out)], check=True)
        code, text = finish_run(start_run(landing, out, home))
        assert code == 3, text
        assert _state(out)[2] == _state(ref_out)[2]
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)
