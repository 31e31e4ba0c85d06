"""The flows' shape and their deployments: names, parameters, schedule, no secrets in prefect.yaml."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import flows
import pytest
import yaml
from prefect import Flow

from cohortpool.config import Settings

PREFECT_YAML = Path(flows.__file__).with_name("prefect.yaml")


def _deployments() -> list[dict[str, object]]:
    return yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))["deployments"]


def _flow(entrypoint: str) -> Flow[..., object]:
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, name)
    assert isinstance(flow, Flow), entrypoint
    return flow


def test_flows_carry_the_kebab_case_names_the_deployments_use() -> None:
    names = {d["name"]: _flow(str(d["entrypoint"])).name for d in _deployments()}
    # site-edge and hub are generated per consortium by `cohortpool deploy` (test_cli_deploy.py)
    assert names == {"nightly": "nightly"}


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: str(d["name"]))
def test_deployment_parameters_are_the_flow_parameters(deployment: dict[str, object]) -> None:
    signature = inspect.signature(_flow(str(deployment["entrypoint"])).fn)
    given = set(deployment["parameters"])  # type: ignore[arg-type]
    required = {n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty}
    assert given <= set(signature.parameters)
    assert required <= given


def test_nightly_schedule_is_the_settings_default_and_runs_never_overlap() -> None:
    nightly = next(d for d in _deployments() if d["name"] == "nightly")
    assert nightly["schedules"] == [{"cron": Settings.model_fields["schedule_cron"].default}]
    assert nightly["concurrency_limit"] == 1


def test_prefect_yaml_holds_no_secret_value() -> None:
    text = PREFECT_YAML.read_text(encoding="utf-8").lower()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "secret" not in body and "password" not in body and "token" not in body
