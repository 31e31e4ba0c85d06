"""Shared fixtures: isolated settings, telemetry off, temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# telemetry off before any test imports Prefect or Great Expectations
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def test_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """A consortium secret for tests (never a real one)."""
    secret = "test-consortium-secret-0123456789abcdef"
    monkeypatch.setenv("COHORTPOOL_SECRET", secret)
    return secret


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads a developer's cohortpool.yaml or writes into the checkout."""
    monkeypatch.setenv("COHORTPOOL_CONFIG", str(tmp_path / "no-such-cohortpool.yaml"))
