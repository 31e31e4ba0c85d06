"""`cohortpool receive` announces each admitted submission to a real Prefect API with the event
``cohortpool.submission.verified`` (resource: site and night), which the hub deployment's trigger matches;
a refused or duplicate arrival is not announced."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from transport_support import SECRET, make_submission

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("prefect")]

EVENT = "cohortpool.submission.verified"


def _events(api: str, site: str) -> list[dict[str, Any]]:
    body = {
        "filter": {"event": {"name": [EVENT]}, "resource": {"labels": {"cohortpool.site_id": [site]}}},
        "limit": 50,
    }
    response = httpx.post(f"{api}/events/filter", json=body, timeout=10)
    response.raise_for_status()
    return list(response.json()["events"])


def _wait_for_events(api: str, site: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _events(api, site)
        if len(found) >= count:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{count} {EVENT} event(s) for {site} not stored within {timeout:.0f} s")


def test_admitted_submissions_are_announced_once_each(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("COHORTPOOL_SECRET", SECRET.decode())  # the hub checks each seal with it

    api = str(PREFECT_API_URL.value())
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    # site04 is not declared: refused and not announced; site03 is (default configuration: site01-03)
    make_submission(tmp_path / "copy", site="site03")
    shutil.copytree(tmp_path / "copy", inbox / "site03" / "2025-03-01")
    make_submission(inbox / "site04" / "2025-03-01", site="site04")
    first = CliRunner().invoke(app, ["receive", str(inbox), "--out", str(out)])
    assert first.exit_code == 1, first.output
    [event] = _wait_for_events(api, "site03", 1)
    assert event["resource"]["prefect.resource.id"] == "cohortpool.submission.site03.2025-03-01"
    assert event["resource"]["cohortpool.night"] == "2025-03-01"
    assert event["payload"]["path"] == str(out / "submissions" / "site03" / "2025-03-01")
    # the same submission delivered again is a duplicate: filed, not announced again
    shutil.copytree(tmp_path / "copy", inbox / "site03" / "2025-03-01")
    again = CliRunner().invoke(app, ["receive", str(inbox), "--out", str(out)])
    assert again.exit_code == 0 and "duplicate site03/2025-03-01" in again.output, again.output
    time.sleep(3)  # the API stores events asynchronously: give a wrongly sent one time to show
    assert len(_events(api, "site03")) == 1
    assert _events(api, "site04") == []
