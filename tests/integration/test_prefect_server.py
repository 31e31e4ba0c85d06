"""Deployment on a real `prefect server`: `cohortpool serve` registers the nightly flow with its cron,
a run triggered through the API completes and publishes its artifacts; prefect.yaml deploys too.

Everything started here is stopped by PID with a kill timeout (a Prefect process can be slow on SIGTERM).
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

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("prefect")]

PREFECT = str(Path(sys.executable).with_name("prefect"))
COHORTPOOL = str(Path(sys.executable).with_name("cohortpool"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def _wait_for(check: Callable[[], Any], what: str, timeout: float, process: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}")
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp_path = tmp_path_factory.mktemp("prefect-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL=f"http://127.0.0.1:{_free_port()}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        DO_NOT_TRACK="1",
        TMPDIR=str(tmp_path),
    )
    return env


@pytest.fixture(scope="module")
def prefect_server(server_env: dict[str, str]) -> Iterator[httpx.Client]:
    """A real `prefect server start` on loopback (one for this module), its own home and SQLite database."""
    port = server_env["PREFECT_API_URL"].split(":")[2].split("/")[0]
    log = (Path(server_env["TMPDIR"]) / "server.log").open("wb")
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", port, "--no-services"],
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(base_url=server_env["PREFECT_API_URL"], timeout=30)
    try:
        _wait_for(lambda: client.get("/health").status_code == 200, "prefect server start", 180, server)
        yield client
    finally:
        client.close()
        _stop(server)
        log.close()


def test_served_nightly_flow_runs_on_demand_and_publishes_artifacts(
    prefect_server: httpx.Client,
    server_env: dict[str, str],
    tiny_landing: Path,
    consortium_secret: str,
    tmp_path: Path,
) -> None:
    api = prefect_server
    env = {**server_env, "COHORTPOOL_SECRET": consortium_secret, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    out = tmp_path / "out"
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [COHORTPOOL, "serve", "--landing", str(tiny_landing), "--out", str(out)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        deployment = _wait_for(
            lambda: (
                (r := api.get("/deployments/name/nightly/cohortpool-nightly")).status_code == 200 and r.json()
            ),
            "cohortpool serve registering the deployment",
            180,
            serve,
        )
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 2 * * *"]
        assert deployment["global_concurrency_limit"]["limit"] == 1
        run = api.post(f"/deployments/{deployment['id']}/create_flow_run", json={}).json()

        def finished() -> dict[str, Any] | None:
            flow_run = api.get(f"/flow_runs/{run['id']}").json()
            state = flow_run.get("state") or {}
            return flow_run if state.get("type") in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

        flow_run = _wait_for(finished, "the triggered nightly run", 420, serve)
        assert flow_run["state"]["type"] == "COMPLETED", (tmp_path / "serve.log").read_text(errors="replace")[
            -3000:
        ]
        artifacts = api.post(
            "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}
        ).json()
        assert {a["key"] for a in artifacts} >= {"nightly-summary", "quarantine-by-site"}
        assert (out / "report" / "report.html").is_file()
        assert (out / "warehouse.duckdb").is_file()
    finally:
        _stop(serve)
        log.close()
    # pause_on_shutdown=False: stopping the server process leaves the nightly schedule active
    assert api.get(f"/deployments/{deployment['id']}").json()["paused"] is False


def test_prefect_yaml_deploys_to_a_work_pool(
    prefect_server: httpx.Client, server_env: dict[str, str]
) -> None:
    api = prefect_server
    assert api.post("/work_pools/", json={"name": "cohortpool", "type": "process"}).status_code == 201
    deploy = subprocess.run(
        [PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", "flows/prefect.yaml"],
        env=server_env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert deploy.returncode == 0, deploy.stdout[-2000:] + deploy.stderr[-2000:]
    deployment = api.get("/deployments/name/nightly/nightly").json()
    assert deployment["work_pool_name"] == "cohortpool"
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 2 * * *"]
