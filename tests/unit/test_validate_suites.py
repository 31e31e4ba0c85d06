"""The reviewed suites load, carry their review metadata, and build runnable GX suites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cohortpool.validate.suites import TABLES, TEXT, TYPED, SuiteError, _load, ephemeral_context, load_suite


@pytest.mark.parametrize("table", TABLES)
def test_suite_has_owner_rationale_and_a_severity_and_reason_per_expectation(table: str) -> None:
    suite = load_suite(table)
    assert suite.meta["owner"] and suite.meta["rationale"]
    assert suite.table == table and suite.name == f"raw.{table}"
    for exp in suite.expectations:
        assert exp["meta"]["severity"] in ("error", "warning")
        assert exp["meta"]["reason"]


@pytest.mark.parametrize("table", TABLES)
def test_gx_suites_get_reproducible_ids_and_split_text_from_typed(table: str) -> None:
    suite = load_suite(table)
    first, again = suite.gx_suite(TYPED), suite.gx_suite(TYPED)
    assert [e.id for e in first.expectations] == [e.id for e in again.expectations]
    assert all(e.id for e in first.expectations)
    total = len(suite.gx_suite(TEXT).expectations) + len(first.expectations)
    assert total == len(suite.expectations)


def test_a_null_id_in_the_json_is_dropped_and_the_suite_runs(tmp_path: Path) -> None:
    import pandas as pd

    raw = json.loads(load_suite("reads").path.read_text())
    for exp in raw["expectations"]:
        exp["id"] = None
    path = tmp_path / "reads.json"
    path.write_text(json.dumps(raw))
    suite = _load(path)
    context = ephemeral_context()
    gx_suite = context.suites.add(suite.gx_suite(TYPED))
    batch = (
        context.data_sources.add_pandas("t")
        .add_dataframe_asset("reads")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": pd.DataFrame({"level": ["L1"]})})
    )
    result = batch.validate(gx_suite, expectation_parameters={"site_ids": ["site01"]})
    assert len(result.results) == len(gx_suite.expectations)


def test_progress_bars_are_off_in_the_context() -> None:
    bars = ephemeral_context().variables.progress_bars
    assert bars is not None and bars.globally is False and bars.metric_calculations is False


def test_expectation_without_severity_is_a_review_error(tmp_path: Path) -> None:
    raw = json.loads(load_suite("clinical").path.read_text())
    del raw["expectations"][3]["meta"]["severity"]
    path = tmp_path / "clinical.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SuiteError, match="severity"):
        _load(path)
