"""Reading back what a flow run told the Prefect API (the flow tests' helpers)."""

from __future__ import annotations

from typing import Any


def run_logs(state: Any) -> list[str]:
    """Every log line the Prefect API holds for the flow run that ended in ``state`` (its task runs too)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)  # the handler sends in batches from a background thread
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]
