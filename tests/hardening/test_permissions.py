"""Permission denied on a site's landing folder or on one file of a drop: named, contained, never lost.

Permissions do not bind root, and CI runs as root: there the code under test runs in a child process
dropped to the unprivileged ``nobody`` user (util-linux ``setpriv``), on a tree that user owns, so
``chmod 000`` really denies it. Run as another user, the child simply runs as that user.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import SECRET

from cohortpool.synth import write_consortium

pytestmark = pytest.mark.integration
NOBODY = 65534
NIGHT = "2025-03-01"


def _prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot drop privileges")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _unprivileged(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` as a user that file permissions apply to (``config``: its cohortpool.yaml)."""
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET, "HOME": tempfile.gettempdir()}
    if config is not None:
        env["COHORTPOOL_CONFIG"] = str(config)
    command = [*_prefix(), sys.executable, *args]
    # cwd: the user must be able to look for cohortpool.yaml there (pytest's cwd may be root-only)
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, check=False, cwd=tempfile.gettempdir()
    )


@pytest.fixture
def owned_tree() -> Iterator[Path]:
    """A scratch folder the unprivileged user owns (pytest's own tmp folders are root-only)."""
    probe = _unprivileged("-c", "import cohortpool.ingest")
    if probe.returncode != 0:
        pytest.skip(f"the checkout is not readable by an unprivileged user: {probe.stderr[-300:]}")
    root = Path(tempfile.mkdtemp(prefix="cohortpool-perm-"))
    try:
        yield root
    finally:
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o700)
        shutil.rmtree(root)


def _hand_over(root: Path) -> None:
    if os.geteuid() == 0:
        for path in [root, *root.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)


def _scan(landing: Path, state: Path, *configured: str) -> dict[str, object]:
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from cohortpool.ingest import scan_sites\n"
        "scan = scan_sites(Path(sys.argv[1]), Path(sys.argv[2]), configured=tuple(sys.argv[3:]))\n"
        "pending = [[n.site_id, n.night] for n in scan.pending]\n"
        "print(json.dumps({'pending': pending, 'failed': scan.failed}))\n"
    )
    done = _unprivileged("-c", code, str(landing), str(state), *configured)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_an_unreadable_site_folder_fails_that_site_with_the_reason_and_the_others_are_scanned(
    owned_tree: Path,
) -> None:
    landing = owned_tree / "landing"
    write_consortium(landing, sites=2, max_patients=2)
    _hand_over(owned_tree)
    (landing / "site02").chmod(0o000)
    result = _scan(landing, owned_tree / "state", "site01", "site02")
    assert result["pending"] == [["site01", NIGHT]]
    failed = result["failed"]
    assert isinstance(failed, dict) and list(failed) == ["site02"]
    assert "PermissionError" in failed["site02"] and "read access" in failed["site02"]
    # access restored: the next scan takes the night it could not read
    (landing / "site02").chmod(0o755)
    assert _scan(landing, owned_tree / "state", "site01", "site02")["pending"] == [
        ["site01", NIGHT],
        ["site02", NIGHT],
    ]


def test_one_unreadable_file_holds_its_sites_night_back_without_naming_the_patient(owned_tree: Path) -> None:
    landing = owned_tree / "landing"
    write_consortium(landing, sites=2, max_patients=2)
    _hand_over(owned_tree)
    hidden = next((landing / "site01" / NIGHT / "dicom").rglob("*.dcm"))
    hidden.chmod(0o000)
    result = _scan(landing, owned_tree / "state", "site01", "site02")
    assert result["pending"] == [["site02", NIGHT]]
    reason = result["failed"]["site01"]  # type: ignore[index]
    assert "PermissionError" in reason
    patient_folder = hidden.relative_to(landing / "site01" / NIGHT / "dicom").parts[0]
    assert patient_folder not in reason  # PACS folders are named after the patient


def test_deid_quarantines_an_unreadable_file_with_the_reason_and_loses_nothing(owned_tree: Path) -> None:
    landing = owned_tree / "landing"
    write_consortium(landing, sites=1, max_patients=2)
    drop = landing / "site01" / NIGHT
    out, vault = owned_tree / "out", owned_tree / "vault"
    _hand_over(owned_tree)
    files = sorted(p for p in (drop / "dicom").rglob("*") if p.is_file())
    files[0].chmod(0o000)
    done = _unprivileged(
        "-m", "cohortpool", "deid", str(drop), str(out), "--site", "site01",
        "--vault", str(vault), "--night", NIGHT, "--workers", "1", config=owned_tree / "cohortpool.yaml",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # something quarantined
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
    ledgers = list((vault / "ledger").glob("*.csv"))
    assert ledgers, sorted(p.relative_to(vault).as_posix() for p in vault.rglob("*"))
    with ledgers[0].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(files)  # every input accounted for
    denied = [r for r in rows if "PermissionError" in " ".join(r.values())]
    assert len(denied) == 1 and denied[0]["outcome"] == "quarantined"
    assert "permissions" in " ".join(denied[0].values())


def test_an_unreadable_configuration_file_is_a_configuration_error_not_a_crash(owned_tree: Path) -> None:
    config = owned_tree / "private" / "cohortpool.yaml"
    config.parent.mkdir()
    config.write_text("workers: 1\n", encoding="utf-8")
    config.parent.chmod(0o700)  # root's folder: the unprivileged user cannot look inside
    if os.geteuid() != 0:
        pytest.skip("only root's folders can be made unreadable to the test's own user here")
    done = _unprivileged("-m", "cohortpool", "config", config=config)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot read the configuration file {config}" in done.stderr
    assert "COHORTPOOL_CONFIG" in done.stderr
