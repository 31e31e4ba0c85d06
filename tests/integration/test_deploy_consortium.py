"""`cohortpool deploy` against a real `prefect server` on PostgreSQL, with real process workers (issue 15.5).

Two declared sites (their own time zones and schedules) and the hub: `cohortpool deploy` creates a work
pool per site and the hub's, the site-edge deployments with their cron in the site's zone, and the hub
deployment with its catch-up cron and the event trigger. One worker per site pool runs that site's
site-edge deployment (ingest, de-identify, push to the hub's inbox folder); `cohortpool receive` at the
hub admits both submissions and emits `cohortpool.submission.verified`; the trigger starts the hub
deployment, whose run, on the hub's worker, validates and loads them.

Everything started here is stopped by PID (a Prefect process can be slow on SIGINT: then killed).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import yaml
from postgres_server import postgres_bin, postgres_server

from cohortpool.config import TELEMETRY_OFF
from cohortpool.pipeline.deployments import VERIFIED_EVENT

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("deploy"), pytest.mark.timeout(900)]

BIN = Path(sys.executable).parent
PREFECT, COHORTPOOL = str(BIN / "prefect"), str(BIN / "cohortpool")
SITES = {"site01": ("Europe/Paris", "30 1 * * *"), "site02": ("Asia/Shanghai", "0 3 * * 1-5")}
FINISHED = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def _tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


def _wait_for(check: Callable[[], Any], what: str, timeout: float, logs: list[Path]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError(
        f"{what}: not within {timeout:.0f} s\n" + "\n".join(f"{p}:\n{_tail(p)}" for p in logs)
    )


@pytest.fixture(scope="module")
def prefect_on_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """A real `prefect server start` on loopback, its database a throwaway PostgreSQL cluster."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs `postgresql`)")
    tmp = tmp_path_factory.mktemp("prefect-pg")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "COHORTPOOL_"))}
    env.update(TELEMETRY_OFF)
    port = _free_port()
    env.update(
        PREFECT_HOME=str(tmp / "prefect-home"),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_WORKER_QUERY_SECONDS="2",
        PREFECT_WORKER_PREFETCH_SECONDS="5",
        TMPDIR=str(tmp),
    )
    # the services this test does not use stay off (a busy 2-core machine); the event persister, the
    # triggers and the task run recorder stay on: the trigger is what is tested
    idle = ("SCHEDULER", "LATE_RUNS", "FOREMAN", "CANCELLATION_CLEANUP", "PAUSE_EXPIRATIONS", "REPOSSESSOR")
    with postgres_server() as database_url:
        server_env = {**env, "PREFECT_API_DATABASE_CONNECTION_URL": database_url}
        server_env.update({f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in idle})
        log_path = tmp / "server.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                with httpx.Client(base_url=env["PREFECT_API_URL"], timeout=30) as api:
                    _wait_for(
                        lambda: api.get("/health").status_code == 200, "prefect server", 180, [log_path]
                    )
                yield env, tmp
            finally:
                _stop(server)


def _deployment(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get(f"/deployments/name/{name}")
    response.raise_for_status()
    return dict(response.json())


def _runs(api: httpx.Client, deployment_id: str) -> list[dict[str, Any]]:
    body = {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}}
    return list(api.post("/flow_runs/filter", json=body).json())


def test_deployed_sites_push_and_the_verified_event_starts_the_hub(
    prefect_on_postgres: tuple[dict[str, str], Path], tiny_landing: Path, consortium_secret: str
) -> None:
    base_env, tmp = prefect_on_postgres
    inbox, hub_out = tmp / "inbox", tmp / "hub"
    inbox.mkdir()
    config = tmp / "cohortpool.yaml"
    sites = [
        {"site_id": site, "timezone": zone, "schedule": cron, "push_to": str(inbox)}
        for site, (zone, cron) in SITES.items()
    ]
    document = {"sites": sites, "hub_inbox": str(inbox), "hub_timezone": "Europe/Berlin"}
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    env = {**base_env, "COHORTPOOL_CONFIG": str(config), "COHORTPOOL_SECRET": consortium_secret}
    api = httpx.Client(base_url=env["PREFECT_API_URL"], timeout=30)
    logs: list[Path] = []
    workers: list[subprocess.Popen[bytes]] = []

    def start_worker(pool: str) -> None:
        log = tmp / f"worker-{pool}.log"
        logs.append(log)
        with log.open("wb") as handle:
            workers.append(
                subprocess.Popen(
                    [PREFECT, "worker", "start", "--pool", pool, "--type", "process", "--limit", "1"],
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    cwd=tmp,
                )
            )

    expected_pools = {"cohortpool-site01", "cohortpool-site02", "cohortpool-hub"}
    deploy_log = tmp / "deploy.log"
    try:
        with deploy_log.open("wb") as handle:
            deploy = subprocess.Popen(
                [COHORTPOOL, "deploy", "--landing", str(tiny_landing), "--out", str(tmp / "{site_id}"),
                 "--hub-out", str(hub_out)],
                env=env, stdout=handle, stderr=subprocess.STDOUT,
            )  # fmt: skip
        # deploy creates the pools first: the workers start (slow on a busy machine) while it registers
        # the deployments; a worker started earlier would create its pool itself
        pools = _wait_for(
            lambda: (
                (found := {p["name"]: p for p in api.post("/work_pools/filter", json={}).json()})
                and expected_pools <= set(found)
                and found
            ),
            "cohortpool deploy creating the work pools",
            300,
            [deploy_log],
        )
        assert all(pools[name]["type"] == "process" for name in expected_pools)
        assert all(pools[name]["base_job_template"] for name in expected_pools)
        for pool in sorted(expected_pools):
            start_worker(pool)
        assert deploy.wait(timeout=300) == 0, _tail(deploy_log)
        site_ids = {}
        for site, (zone, cron) in SITES.items():
            d = _deployment(api, f"site-edge/site-edge-{site}")
            assert d["work_pool_name"] == f"cohortpool-{site}"
            assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in d["schedules"]] == [
                (cron, zone)
            ]
            assert d["parameters"]["site_id"] == site and d["parameters"]["push_to"] == str(inbox)
            assert d["parameters"]["out_dir"] == str(tmp / site)
            site_ids[site] = d["id"]
        hub = _deployment(api, "hub/hub")
        assert hub["work_pool_name"] == "cohortpool-hub"
        assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in hub["schedules"]] == [
            ("0 6 * * *", "Europe/Berlin")
        ]
        assert hub["global_concurrency_limit"]["limit"] == 1
        automations = api.get(f"/automations/related-to/prefect.deployment.{hub['id']}").json()
        [automation] = automations
        assert automation["trigger"]["expect"] == [VERIFIED_EVENT]
        assert automation["trigger"]["posture"] == "Reactive"
        assert automation["actions"][0]["deployment_id"] == hub["id"]

        # the site-edge deployments, run by their sites' workers: ingest, de-identify, push
        runs = {
            site: api.post(f"/deployments/{i}/create_flow_run", json={}).json()
            for site, i in site_ids.items()
        }

        def sites_finished() -> list[dict[str, Any]] | None:
            states = [api.get(f"/flow_runs/{r['id']}").json() for r in runs.values()]
            return states if all((s.get("state") or {}).get("type") in FINISHED for s in states) else None

        finished = _wait_for(sites_finished, "the site-edge runs", 420, logs)
        assert [s["state"]["type"] for s in finished] == ["COMPLETED", "COMPLETED"], "\n".join(
            f"{p}:\n{_tail(p)}" for p in logs
        )
        assert sorted(p.parent.parent.name for p in inbox.glob("*/*/submission.json")) == ["site01", "site02"]

        # the hub admits both and announces them; the trigger starts the hub deployment
        received = subprocess.run(
            [COHORTPOOL, "receive", str(inbox), "--out", str(hub_out)],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert received.returncode == 0, received.stdout + received.stderr
        assert received.stdout.count("admitted ") == 2, received.stdout

        def hub_completed() -> dict[str, Any] | None:
            done = [r for r in _runs(api, hub["id"]) if (r.get("state") or {}).get("type") in FINISHED]
            return done[0] if done else None

        hub_run = _wait_for(hub_completed, "a hub run started by the event", 420, logs)
        assert hub_run["state"]["type"] == "COMPLETED", "\n".join(f"{p}:\n{_tail(p)}" for p in logs)
        assert (hub_run.get("created_by") or {}).get("type") == "AUTOMATION"
        with duckdb.connect(str(hub_out / "warehouse.duckdb"), read_only=True) as con:
            loaded = {r[0] for r in con.execute("SELECT DISTINCT site_id FROM analysis.batches").fetchall()}
        assert loaded == {"site01", "site02"}
    finally:
        for worker in workers:  # all told at once, then each waited for
            if worker.poll() is None:
                worker.send_signal(signal.SIGINT)
        for worker in workers:
            _stop(worker)
        api.close()
