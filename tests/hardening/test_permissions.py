"""Permission denied on a site's landing folder or on one file of a drop: named, contained, never lost.

Permissions do not bind root, and CI runs as root. There the code under test runs in a child process
that stays root but loses the two capabilities that bypass file permissions (CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH, dropped from its bounding set with util-linux ``setpriv``), so ``chmod 000`` denies
it like any user while the checkout, the virtualenv and pytest's folders stay readable. Run as another
user, the child simply runs as that user.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import SECRET

from cohortpool.synth import write_consortium
from config_support import write_config

pytestmark = pytest.mark.integration
NIGHT = "2025-03-01"
_DROP = "-dac_override,-dac_read_search"


def _prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot drop the permission bypass")
    return [setpriv, f"--bounding-set={_DROP}", f"--inh-caps={_DROP}"]


def _unprivileged(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a process that file permissions apply to (``config``: its cohortpool.yaml)."""
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET}
    if config is not None:
        env["COHORTPOOL_CONFIG"] = str(config)
    command = [*_prefix(), sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


@pytest.fixture
def owned_tree(tmp_path: Path) -> Iterator[Path]:
    """A scratch folder whose permissions the test may take away (they are restored for clean-up)."""
    denied = tmp_path / "denied.txt"
    denied.write_text("x", encoding="utf-8")
    denied.chmod(0o000)
    probe = _unprivileged("-c", f"open({str(denied)!r}).read()")
    if probe.returncode == 0 or "PermissionError" not in probe.stderr:
        pytest.skip(f"cannot make file permissions bind this process here: {probe.stderr[-300:]}")
    denied.chmod(0o600)
    try:
        yield tmp_path
    finally:
        for path in [tmp_path, *tmp_path.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o700)


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
    files = sorted(p for p in (drop / "dicom").rglob("*") if p.is_file())
    files[0].chmod(0o000)
    done = _unprivileged(
        "-m", "cohortpool", "deid", str(drop), str(out), "--site", "site01",
        "--vault", str(vault), "--night", NIGHT, "--workers", "1",
        config=write_config(owned_tree / "cohortpool.yaml"),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # something quarantined
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
    ledger = vault / "ledger" / f"{NIGHT}.csv"  # beside it: the night's summary by attribute
    assert ledger.is_file(), sorted(p.relative_to(vault).as_posix() for p in vault.rglob("*"))
    with ledger.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(files)  # every input accounted for
    denied = [r for r in rows if "PermissionError" in " ".join(r.values())]
    assert len(denied) == 1 and denied[0]["outcome"] == "quarantined"
    assert "permissions" in " ".join(denied[0].values())


def test_an_unreadable_configuration_file_is_a_configuration_error_not_a_crash(owned_tree: Path) -> None:
    config = owned_tree / "private" / "cohortpool.yaml"
    config.parent.mkdir()
    config.write_text("workers: 1\n", encoding="utf-8")
    config.parent.chmod(0o000)  # nobody may look inside
    done = _unprivileged("-m", "cohortpool", "config", config=config)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot read the configuration file {config}" in done.stderr
    assert "COHORTPOOL_CONFIG" in done.stderr
