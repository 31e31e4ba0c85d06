"""Scale-out: the nightly flow's per-site work on a two-worker Dask cluster gives the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import NightSummary, summary_of
from cohortpool.warehouse import checksum

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("prefect")]


def test_dask_cluster_outputs_are_byte_identical_to_the_default_runner(
    default_run: tuple[RunLayout, Any],
    tiny_landing: Path,
    run_nightly: Callable[..., Any],
    tree_digest: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    from dask.distributed import LocalCluster
    from prefect_dask import DaskTaskRunner

    threads, _ = default_run
    dask = RunLayout(tmp_path / "out")
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        local_directory=str(tmp_path / "dask-scratch"),
    ) as cluster:
        state = run_nightly(
            tiny_landing, dask.out, task_runner=DaskTaskRunner(address=cluster.scheduler_address)
        )
    summary = summary_of(state.result(raise_on_failure=False))
    assert isinstance(summary, NightSummary), state
    assert [o.load.status for o in summary.outcomes if o.load] == ["loaded", "loaded"]
    for folder in ("submissions", "validated", "report"):
        assert tree_digest(dask.out / folder) == tree_digest(threads.out / folder), folder
    assert checksum(dask.warehouse) == checksum(threads.warehouse)
