"""Shared fixtures: isolated settings, telemetry off, temporary folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from config_support import TEST_SECRET, write_config

# telemetry off before any test imports Prefect or Great Expectations
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def test_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """A consortium secret for tests (never a real one)."""
    monkeypatch.setenv("COHORTPOOL_SECRET", TEST_SECRET)
    return TEST_SECRET


@pytest.fixture(scope="session", autouse=True)
def sites_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A configuration file declaring the synthetic consortium's sites (cohortpool has no built-in ones),
    in force for the whole session: module- and session-scoped fixtures run before any test's own."""
    path = write_config(tmp_path_factory.mktemp("config") / "cohortpool.yaml")
    previous = os.environ.get("COHORTPOOL_CONFIG")
    os.environ["COHORTPOOL_CONFIG"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("COHORTPOOL_CONFIG", None)
    else:
        os.environ["COHORTPOOL_CONFIG"] = previous


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, sites_config: Path) -> None:
    """No test reads a developer's cohortpool.yaml; every test runs with a registry declaring the
    synthetic sites (site01..site03). Tests of the registry itself point COHORTPOOL_CONFIG elsewhere."""
    monkeypatch.setenv("COHORTPOOL_CONFIG", str(sites_config))
