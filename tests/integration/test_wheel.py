"""The wheel, installed in a fresh virtual environment, runs the demo's path from a folder outside the
checkout: nothing it needs (SQL, suites, plans, flows, profile data) may come from the working tree.

Dependencies are pinned to ``uv.lock`` (``uv export``) and taken from uv's cache (``--offline``); when the
cache lacks the index pages, from PyPI. `uv tool install` of the same wheel gives a working command too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cohortpool import __version__
from cohortpool.deid.profile import EDITION

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("wheel")]
ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")
NIGHT = "2025-03-01"


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _install(command: list[str | Path], cwd: Path, env: dict[str, str]) -> None:
    """``command`` from uv's cache alone, else with PyPI (whose index pages the cache may lack)."""
    offline = subprocess.run([str(c) for c in [*command, "--offline"]], cwd=cwd, env=env, capture_output=True)
    if offline.returncode == 0:
        return
    online = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True)
    if online.returncode != 0:
        pytest.skip(
            f"the locked dependencies are neither in uv's cache nor reachable: {online.stderr[-500:]}"
        )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the built wheel, the lock's requirements)."""
    if not UV.is_file():
        pytest.skip("uv is not installed beside this Python (make setup installs it)")
    dist = tmp_path_factory.mktemp("dist")
    _run(UV, "build", "--wheel", "--out-dir", dist, cwd=ROOT)
    (built,) = dist.glob("cohortpool-*.whl")
    requirements = dist / "requirements.txt"
    _run(
        UV, "export", "--frozen", "--no-dev", "--no-group", "bench", "--no-emit-project",
        "--format", "requirements-txt", "-o", requirements, cwd=ROOT,
    )  # fmt: skip
    return built, requirements


def _clean_env(home: Path) -> dict[str, str]:
    """No checkout on the path, no secret, no configuration of the test session."""
    keep = ("PATH", "HOME", "LANG", "UV_CACHE_DIR", "DO_NOT_TRACK", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["COHORTPOOL_CONFIG"] = str(home / "cohortpool.yaml")
    env["PREFECT_HOME"] = str(home / ".prefect")
    return env


def test_the_installed_wheel_runs_the_demo_path_outside_the_checkout(
    wheel: tuple[Path, Path], tmp_path: Path
) -> None:
    built, requirements = wheel
    work = tmp_path / "site"  # a hospital's folder: no checkout anywhere near it
    work.mkdir()
    venv = tmp_path / "venv"
    env = _clean_env(work)
    _run(UV, "venv", "--python", sys.executable, venv, cwd=work, env=env)
    _install(
        [UV, "pip", "install", "--python", venv / "bin" / "python", "-r", requirements, built], work, env
    )
    cohortpool = venv / "bin" / "cohortpool"

    code = "import cohortpool, flows; print(cohortpool.__file__)"
    where = _run(venv / "bin" / "python", "-c", code, cwd=work, env=env)
    assert Path(where.strip()).is_relative_to(venv) and not Path(where.strip()).is_relative_to(ROOT)
    assert _run(cohortpool, "version", cwd=work, env=env).splitlines() == [
        f"cohortpool {__version__}",
        f"de-identification profile: {EDITION}",
    ]
    _run(cohortpool, "synth", "landing", "--sites", "2", "--max-patients", "3", cwd=work, env=env)
    (work / "landing" / "_truth.json").unlink()
    _run(cohortpool, "keygen", "consortium.key", cwd=work, env=env)
    (work / "cohortpool.yaml").write_text(
        "secret_file: consortium.key\nworkers: 1\nsites:\n  - site_id: site01\n  - site_id: site02\n",
        encoding="utf-8",
    )
    assert "valid; sites: site01, site02" in _run(cohortpool, "config", "check", cwd=work, env=env)

    # one site by hand, stage by stage (the installed package finds its profile, suites and SQL)
    sub, val = work / "manual" / "submission", work / "manual" / "validated"
    deid = subprocess.run(
        [cohortpool, "deid", f"landing/site01/{NIGHT}", sub, "--site", "site01", "--vault", "vault/site01"],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert deid.returncode == 0 and (sub / "submission.json").is_file(), deid.stderr  # the clean site
    _run(cohortpool, "validate", sub, "--out", val, cwd=work, env=env)
    assert (val / "summary.json").is_file()
    _run(cohortpool, "load", val, "--db", work / "manual" / "warehouse.duckdb", cwd=work, env=env)
    db, report = work / "manual" / "warehouse.duckdb", work / "manual" / "report"
    _run(cohortpool, "report", "--db", db, "--out", report, cwd=work, env=env)
    assert (work / "manual" / "report" / "report.html").is_file()

    # the nightly flow (flows/ and Prefect from the wheel), as `cohortpool demo` runs it
    night = subprocess.run(
        [cohortpool, "run", "landing", "--out", "out"], cwd=work, env=env, capture_output=True, text=True,
        timeout=1200,
    )  # fmt: skip
    assert night.returncode == 1, night.stdout[-2000:] + night.stderr[-3000:]  # site02's planted defects
    assert (work / "out" / "report" / "report.html").is_file()
    status = subprocess.run(
        [cohortpool, "status", "--out", "out", "--date", "2025-03-02"],
        cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert status.returncode == 0, status.stdout + status.stderr
    assert list(work.glob("**/*.py")) == []  # nothing of the package was copied into the work folder


def test_uv_tool_install_of_the_wheel_gives_a_working_command(
    wheel: tuple[Path, Path], tmp_path: Path
) -> None:
    built, requirements = wheel
    env = {
        **_clean_env(tmp_path),
        "UV_TOOL_DIR": str(tmp_path / "tools"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
    }
    command: list[str | Path] = [UV, "tool", "install", "--python", sys.executable, "-c", requirements, built]
    _install(command, tmp_path, env)
    assert shutil.which("cohortpool", path=str(tmp_path / "bin")) is not None
    shown = _run(tmp_path / "bin" / "cohortpool", "version", cwd=tmp_path, env=env)
    assert shown.splitlines()[0] == f"cohortpool {__version__}"
