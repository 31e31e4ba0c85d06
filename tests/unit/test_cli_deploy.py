"""`cohortpool deploy`: the plan generated from the site registry, its dry run, and its refusals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.config import TELEMETRY_OFF, check_cron, load_settings
from cohortpool.pipeline.deployments import VERIFIED_EVENT, plan_deployments

REGISTRY = """\
sites:
  - site_id: site01
    name: Hospital A
    timezone: Europe/Paris
    schedule: "30 1 * * *"
    push_to: sftp://site01@hub.example.org/inbox
  - site_id: site02
    dicomweb_url: http://pacs.site02.example:8042/dicom-web
hub_inbox: /srv/cohortpool/inbox
hub_timezone: Europe/Berlin
hub_schedule: "15 7 * * *"
"""


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cohortpool.yaml"
    path.write_text(REGISTRY, encoding="utf-8")
    monkeypatch.setenv("COHORTPOOL_CONFIG", str(path))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return path


def test_each_site_gets_its_pool_and_schedule_in_its_zone_and_the_hub_its_trigger(registry: Path) -> None:
    plan = plan_deployments(load_settings(), site_out="/srv/{site_id}", hub_out="/srv/hub")
    assert [p.name for p in plan.pools] == ["cohortpool-site01", "cohortpool-site02", "cohortpool-hub"]
    one, two, hub = plan.deployments
    assert (one.full_name, one.work_pool, one.cron, one.timezone) == (
        "site-edge/site-edge-site01",
        "cohortpool-site01",
        "30 1 * * *",
        "Europe/Paris",
    )
    assert one.parameters == {
        "landing_dir": "/srv/site01/landing",
        "out_dir": "/srv/site01",
        "site_id": "site01",
        "push_to": "sftp://site01@hub.example.org/inbox",
    }
    assert one.trigger_event is None
    # defaults: 2 a.m., UTC when the site names no zone; its PACS is fetched first; no push without push_to
    assert (two.cron, two.timezone, two.work_pool) == ("0 2 * * *", "UTC", "cohortpool-site02")
    assert two.parameters["source_url"].startswith("http://pacs.site02") and "push_to" not in two.parameters
    assert (hub.full_name, hub.work_pool, hub.cron, hub.timezone) == (
        "hub/hub",
        "cohortpool-hub",
        "15 7 * * *",
        "Europe/Berlin",
    )
    assert hub.trigger_event == VERIFIED_EVENT == "cohortpool.submission.verified"
    assert hub.concurrency_limit == 1
    assert hub.parameters == {"out_dir": "/srv/hub", "inbox_dir": "/srv/cohortpool/inbox"}


def test_one_site_without_the_hub(registry: Path) -> None:
    plan = plan_deployments(load_settings(), sites=("site02",), hub=False)
    assert [d.name for d in plan.deployments] == ["site-edge-site02"]
    assert [p.name for p in plan.pools] == ["cohortpool-site02"]


def test_dry_run_prints_the_plan_and_needs_no_server(registry: Path) -> None:
    result = CliRunner().invoke(app, ["deploy", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "would create work pool cohortpool-site01 (process)" in lines
    assert any(
        "site-edge/site-edge-site01" in line and "'30 1 * * *' in Europe/Paris" in line for line in lines
    )
    assert any("hub/hub" in line and VERIFIED_EVENT in line for line in lines)


@pytest.mark.parametrize(
    ("registry_text", "args", "message"),
    [
        (REGISTRY, ["deploy", "--site", "site09", "--dry-run"], "site 'site09' is not declared"),
        (
            REGISTRY.replace("Europe/Paris", "Europe/Pariss"),
            ["deploy", "--dry-run"],
            "sites.0.timezone: unknown time zone 'Europe/Pariss' (nearest: Europe/Paris)",
        ),
        (
            REGISTRY.replace('"30 1 * * *"', '"30 1 * *"'),
            ["deploy", "--dry-run"],
            "sites.0.schedule: '30 1 * *' is not a cron expression",
        ),
        (
            REGISTRY.replace('"30 1 * * *"', '"30 25 * * *"'),
            ["deploy", "--dry-run"],
            "site-edge/site-edge-site01: schedule '30 25 * * *' in Europe/Paris is refused by Prefect",
        ),
        ("sites: []\n", ["deploy", "--dry-run"], "no site is declared"),
    ],
    ids=["undeclared-site", "timezone", "cron-shape", "cron-value", "no-sites"],
)
def test_refusals_exit_2_with_one_line(
    registry: Path, registry_text: str, args: list[str], message: str
) -> None:
    registry.write_text(registry_text, encoding="utf-8")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: ") and message in line, line


@pytest.mark.parametrize("cron", ["0 2 * * *", "*/15 1-5 * * mon-fri", "0,30 2 1 jan,feb 0"])
def test_cron_shapes_accepted(cron: str) -> None:
    assert check_cron(cron) == cron


@pytest.mark.parametrize("cron", ["0 2 * *", "0 2 * * * *", "a b c d e", "100 2 * * *", "@daily"])
def test_cron_shapes_refused(cron: str) -> None:
    with pytest.raises(ValueError, match="not a cron expression"):
        check_cron(cron)


def _deploy_process(registry: Path, api_url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """`cohortpool deploy` in its own process: Prefect reads PREFECT_API_URL once per process (and a
    test session may hold a temporary Prefect API in its settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(TELEMETRY_OFF, COHORTPOOL_CONFIG=str(registry), PREFECT_CLIENT_MAX_RETRIES="0")
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    command = [str(Path(sys.executable).with_name("cohortpool")), "deploy", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_without_a_prefect_api_nothing_is_created_exit_2(registry: Path) -> None:
    result = _deploy_process(registry, None)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: PREFECT_API_URL is not set: point it at the hub's Prefect server (docs/deploy.md)"
    ]


def test_an_unreachable_server_exits_3_with_one_line(registry: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    result = _deploy_process(registry, api, "--no-hub", "--site", "site01")
    assert result.returncode == 3, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: the Prefect server at {api} refused or cannot be reached"), line
