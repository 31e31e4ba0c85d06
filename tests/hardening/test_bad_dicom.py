"""`cohortpool deid` over the bad-DICOM corpus (tests/hardening/bad_dicom.py).

Each input must end in its expected place (de-identified, quarantined with a reason naming what is
wrong, or duplicate), the run must finish (a hang fails the subprocess timeout), nothing may be
written outside OUT and the vault, nothing outside the landing folder may be read or copied, and no
planted token may reach OUT.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bad_dicom import NIGHT, SITE, BadDrop, build_bad_drop
from support import SECRET, cli

pytestmark = pytest.mark.xdist_group("hardening-deid")
BOMB_MIB = 600  # past the 512 MiB bound of cohortpool.deid.stream.MAX_INFLATED_BYTES


def _digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative path -> sha256 (or link target) of every entry under ``root`` (pipes by name only)."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.split("/", 1)[0] in skip:
            continue
        if path.is_symlink():
            found[relative] = "-> " + str(path.readlink())
        elif path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[relative] = "folder" if path.is_dir() else "special"
    return found


@pytest.fixture(scope="module")
def deid_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[BadDrop, Path, Path, subprocess.CompletedProcess[str], dict[str, str]]:
    root = tmp_path_factory.mktemp("bad-dicom")
    bad = build_bad_drop(root, bomb_mib=BOMB_MIB)
    before = _digest(root)
    out, vault = root / "out", root / "vault"
    proc = cli(
        "deid", str(bad.drop), str(out), "--site", SITE, "--vault", str(vault), "--workers", "2", timeout=240
    )
    return bad, out, vault, proc, before


def _ledger(vault: Path) -> dict[str, dict[str, str]]:
    with (vault / "ledger" / f"{NIGHT}.csv").open(encoding="utf-8", newline="") as handle:
        return {row["input_path"]: row for row in csv.DictReader(handle)}


def test_the_run_finishes_with_exit_code_one_and_reports_the_quarantine(deid_run) -> None:
    *_, proc, _ = deid_run
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "quarantined" in proc.stdout


CASES = [
    "zero_byte.dcm",
    "truncated_header.dcm",
    "truncated_pixels.dcm",
    "wrong_preamble.dcm",
    "tiff_preamble.dcm",
    "no_file_meta.dcm",
    "invalid_vr.dcm",
    "huge_length_header.dcm",
    "huge_length_pixels.dcm",
    "deep_sequence.dcm",
    "deflate_bomb.dcm",
    "export.zip",
    "link_file.dcm",
    "link_passwd.dcm",
    "link_folder",
    "pipe.dcm",
    "resend/IM0001.dcm",
    "implicit.dcm",
    "truncated_meta.dcm",
    "truncated_value.dcm",
    "noisy_values.dcm",
]


@pytest.mark.parametrize("name", CASES)
def test_each_bad_input_ends_in_its_expected_place_with_a_reason(deid_run, name: str) -> None:
    bad, _out, vault, _proc, _ = deid_run
    outcome, word = bad.expected[f"dicom/{name}"]
    row = _ledger(vault)[f"dicom/{name}"]
    assert row["outcome"] == outcome, row
    assert word.lower() in row["reason"].lower(), row
    if outcome == "quarantined":
        assert row["reason"], row


def test_pydicom_says_nothing_on_the_terminal(deid_run) -> None:
    # its warnings repeat header values with its source paths; the summary counts what is worth saying
    _bad, _out, vault, proc, _ = deid_run
    assert "Warning" not in proc.stderr and "pydicom" not in proc.stderr, proc.stderr
    summary = (vault / "ledger" / f"{NIGHT}.summary.csv").read_text(encoding="utf-8")
    assert "unknown character set,SpecificCharacterSet" in summary


def test_every_input_is_accounted_for_once(deid_run) -> None:
    bad, out, vault, _proc, _ = deid_run
    ledger = _ledger(vault)
    assert sorted(ledger) == sorted(bad.expected)
    counts = json.loads((out / "submission.json").read_text())["counts"]
    assert counts["input_files"] == len(bad.expected)
    assert counts["input_files"] == counts["deidentified"] + counts["quarantined"] + counts["duplicate"]
    outputs = sorted(p.relative_to(out).as_posix() for p in (out / "dicom").rglob("*.dcm"))
    assert outputs == sorted(r["output_path"] for r in ledger.values() if r["outcome"] == "deidentified")


def test_nothing_outside_the_landing_folder_is_read_copied_or_written(deid_run) -> None:
    bad, out, vault, _proc, before = deid_run
    root = bad.drop.parents[2]
    # inputs and the outside folder untouched, and no new entry anywhere but OUT and the vault
    assert _digest(root, skip=("out", "vault")) == before
    quarantined = {p.relative_to(vault).as_posix() for p in vault.rglob("*") if p.is_file()}
    for link in ("link_file.dcm", "link_passwd.dcm", "link_folder", "pipe.dcm"):
        assert not any(q.endswith(link) for q in quarantined), link  # nothing copied through a link
    passwd = Path("/etc/passwd").read_bytes()
    assert not any(p.read_bytes() == passwd for p in vault.rglob("*") if p.is_file())
    assert not list(root.parent.rglob("escaped.dcm")) and not Path("/tmp/absolute.dcm").exists()
    # the file outside (a valid DICOM) was not de-identified into the submission
    assert len(list((out / "dicom").rglob("*.dcm"))) == sum(
        1 for o, _ in bad.expected.values() if o == "deidentified"
    )


def test_no_planted_token_reaches_the_submission(deid_run) -> None:
    bad, out, _vault, proc, _ = deid_run
    hits = []
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out).as_posix()
        blob = path.read_bytes() if path.is_file() else b""
        hits += [f"{relative}: {t}" for t in bad.tokens if t in relative or t.encode() in blob]
    hits += [f"terminal: {t}" for t in bad.tokens if t in proc.stdout + proc.stderr]
    assert hits == []
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_the_decompression_bomb_is_refused_in_bounded_memory(deid_run, tmp_path: Path) -> None:
    # the bomb alone, in a fresh parent whose only children are this deid run: peak RSS < 300 MB,
    # where inflating it (what pydicom does) needs more than BOMB_MIB
    bad, *_ = deid_run
    drop = tmp_path / "landing" / SITE / NIGHT
    (drop / "dicom").mkdir(parents=True)
    (drop / "dicom" / "bomb.dcm").write_bytes((bad.drop / "dicom" / "deflate_bomb.dcm").read_bytes())
    probe = (
        "import resource, subprocess, sys\n"
        "proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out, vault = str(tmp_path / "out"), str(tmp_path / "vault")
    command = [sys.executable, "-c", probe, sys.executable, "-m", "cohortpool", "deid", str(drop), out,
               "--site", SITE, "--vault", vault, "--workers", "1"]  # fmt: skip
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240, check=True)
    code, peak_kib = (int(x) for x in done.stdout.split())
    assert code == 1
    assert peak_kib < 300 * 1024, f"peak RSS {peak_kib >> 10} MiB"
