"""Fixtures for the Prefect flow tests: ONE temporary Prefect API per test session, and a tiny consortium.

``prefect_test_harness`` takes 10-12 s to start, so it is session-scoped, and every test that needs it is
in the xdist group ``prefect`` (``@pytest.mark.xdist_group("prefect")``): under ``-n 2 --dist loadgroup``
one worker runs them all and only that worker starts the harness.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from orthanc_server import OrthancServer, orthanc_server

from cohortpool.pipeline.layout import RunLayout
from cohortpool.synth import write_consortium

SECRET = "5dd5175d5e16cc54e8db41f1bc19e8d2a718c7fff042997a1ef9d017dd71039f"


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A temporary Prefect API, its home and result storage under the session's tmp folder."""
    from prefect.settings import PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    with (
        temporary_settings({PREFECT_HOME: home, PREFECT_LOCAL_STORAGE_PATH: home / "storage"}),
        prefect_test_harness(server_startup_timeout=180),
    ):
        yield


@pytest.fixture(scope="session")
def consortium_secret() -> Iterator[str]:
    """The consortium secret for the session's flow runs (tasks read it from the environment)."""
    previous = os.environ.get("COHORTPOOL_SECRET")
    os.environ["COHORTPOOL_SECRET"] = SECRET
    yield SECRET
    if previous is None:
        os.environ.pop("COHORTPOOL_SECRET", None)
    else:
        os.environ["COHORTPOOL_SECRET"] = previous


@pytest.fixture(scope="session")
def tiny_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sites of three patients (site02 with planted defects); site03 is configured, has its landing
    folder, but sends nothing (idle; a missing folder would be a failed site)."""
    root = tmp_path_factory.mktemp("landing")
    write_consortium(root, sites=2, max_patients=3)
    (root / "site03").mkdir()
    return root


def _run_nightly(landing: Path, out: Path, **options: Any) -> Any:
    """Run the nightly flow as `cohortpool run` does (results cached under OUT); returns the final state."""
    from flows.nightly import nightly
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    layout = RunLayout(out)
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: layout.results}):
        flow = nightly.with_options(**options) if options else nightly
        return flow(landing_dir=landing, out_dir=out, workers=1, return_state=True)


@pytest.fixture(scope="session")
def default_run(
    prefect_harness: None,
    consortium_secret: str,
    tiny_landing: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[RunLayout, Any]:
    """The tiny consortium through the nightly flow on the default (thread) task runner, once."""
    out = tmp_path_factory.mktemp("default-run")
    return RunLayout(out), _run_nightly(tiny_landing, out)


@pytest.fixture(scope="session")
def run_nightly(prefect_harness: None, consortium_secret: str) -> Callable[..., Any]:
    """``run_nightly(landing, out, **flow_options) -> final state``."""
    return _run_nightly


@pytest.fixture(scope="session")
def tree_digest() -> Callable[..., dict[str, str]]:
    """``tree_digest(root, exclude=()) -> {relative path: sha256}``."""
    return _tree_digest


def _tree_digest(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (byte-identity checks)."""
    import hashlib

    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part in exclude for part in p.relative_to(root).parts)
    }


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A real Orthanc on loopback for the session (each xdist worker that asks starts its own)."""
    yield from orthanc_server(tmp_path_factory)
