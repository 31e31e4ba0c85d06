"""The hub flow with one site's submission.json odd: that site-night alone is affected, the others go on.

The submissions are the tiny consortium's, made by the nightly run (``default_run``), copied into a hub's
``OUT/submissions`` by hand (the README: the hub re-checks such folders), one of them then edited as a
site's faulty packager holding the key would (sealed again: the hub's run holds the key and checks seals):

- not JSON: refused at the verify step (moved to ``OUT/rejected`` with ``reason.json``, one line, no
  traceback), never validated; the other site is loaded; the run ends Failed, exit 3;
- no ``counts``, or ``counts`` a list: its files are intact and verified, so it is validated and loaded
  with its de-identification counts unknown (NULL in ``raw.batches``), and the other site too;
- a count that is not a non-negative integer: the warehouse refuses to record it, so that site-night fails
  at load (``BatchError`` naming the file) and the other site is loaded.

Before, ``find-submissions`` raised (KeyError, three tries) and no site was validated or loaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import NightSummary, summary_of

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("prefect")]


def _summary(state: Any) -> NightSummary:
    summary = summary_of(state.result(raise_on_failure=False))
    assert summary is not None, state
    return summary


def _hub_with(default_run: tuple[RunLayout, Any], out: Path) -> dict[str, Path]:
    """The default run's submissions copied into ``out/submissions`` by hand; site -> its folder."""
    made, _ = default_run
    copied = {}
    for site in ("site01", "site02"):
        [night] = [p for p in (made.submissions / site).iterdir() if not p.name.startswith(".")]
        copied[site] = shutil.copytree(night, out / "submissions" / site / night.name)
    return copied


def _write_sealed(manifest: Path, facts: object) -> None:
    """``facts`` as the site's ``submission.json``, sealed with the run's consortium secret."""
    from cohortpool.contract.seal import canonical_bytes, sealed
    from cohortpool.pipeline.runconfig import load_run_config, run_secret

    assert isinstance(facts, dict)
    manifest.write_bytes(canonical_bytes(sealed(run_secret(load_run_config()), facts)))


def _batches(db: Path) -> dict[str, int | None]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT site_id, deid_input_files FROM raw.batches ORDER BY site_id").fetchall()
    return {site: files for site, files in rows}


def test_a_manifest_that_is_not_json_fails_its_site_night_alone(
    prefect_harness: None,
    default_run: tuple[RunLayout, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from flows.hub import hub

    out = tmp_path / "hub"
    copied = _hub_with(default_run, out)
    manifest = copied["site02"] / "submission.json"
    manifest.write_text(manifest.read_text(encoding="utf-8")[:40], encoding="utf-8")  # cut mid-way

    state = hub(out_dir=out, return_state=True)
    summary = _summary(state)

    assert state.is_failed()
    by_site = {o.site_id: o for o in summary.outcomes}
    two = by_site["site02"]
    assert (two.failed_step, two.error, two.validation) == ("verify", "SubmissionRefusedError", None)
    rejected = out / "rejected" / "site02" / copied["site02"].name
    assert "submission.json: not UTF-8 JSON" in (two.detail or "")
    assert f"see {rejected}/reason.json" in (two.detail or "")
    assert json.loads((rejected / "reason.json").read_text())["problems"][0]["check"] == "manifest"
    assert not copied["site02"].exists() and not (out / "validated" / "site02").exists()
    assert by_site["site01"].failed_step is None and by_site["site01"].load is not None
    assert set(_batches(out / "warehouse.duckdb")) == {"site01"}
    assert summary.exit_code == 3
    assert "verify failed: SubmissionRefusedError" in caplog.text  # the run's log, captured
    # an expected failure: one line, no traceback (before, find-submissions raised for every site)
    assert not [r for r in caplog.records if r.exc_info and r.exc_info[0] is not None]
    assert "Traceback" not in caplog.text and "Task run failed with exception" not in caplog.text


@pytest.mark.parametrize("counts", [None, [1, 2]], ids=["no-counts", "counts-a-list"])
def test_a_manifest_without_usable_counts_is_loaded_with_them_unknown(
    prefect_harness: None, default_run: tuple[RunLayout, Any], tmp_path: Path, counts: object
) -> None:
    from flows.hub import hub

    out = tmp_path / "hub"
    copied = _hub_with(default_run, out)
    manifest = copied["site02"] / "submission.json"
    facts = json.loads(manifest.read_text(encoding="utf-8"))
    facts.pop("counts")
    if counts is not None:
        facts["counts"] = counts
    _write_sealed(manifest, facts)

    summary = _summary(hub(out_dir=out, return_state=True))

    by_site = {o.site_id: o for o in summary.outcomes}
    assert [o.failed_step for o in summary.outcomes] == [None, None], summary.outcomes
    two = by_site["site02"]
    assert two.submission is not None and two.submission.counts == {}
    assert two.load is not None and two.load.rows_loaded > 0
    loaded = _batches(out / "warehouse.duckdb")
    assert loaded["site02"] is None  # the site's de-identification counts: unknown
    assert loaded["site01"] == by_site["site01"].submission.files_in  # type: ignore[union-attr]
    assert summary.exit_code == 1  # site02's planted rows are quarantined; nothing failed


def test_a_count_that_is_not_a_count_fails_its_site_night_at_load_alone(
    prefect_harness: None, default_run: tuple[RunLayout, Any], tmp_path: Path
) -> None:
    from flows.hub import hub

    out = tmp_path / "hub"
    copied = _hub_with(default_run, out)
    manifest = copied["site02"] / "submission.json"
    facts = json.loads(manifest.read_text(encoding="utf-8"))
    facts["counts"]["input_files"] = "many"
    _write_sealed(manifest, facts)

    summary = _summary(hub(out_dir=out, return_state=True))

    by_site = {o.site_id: o for o in summary.outcomes}
    two = by_site["site02"]
    assert two.submission is not None and "input_files" not in two.submission.counts
    assert (two.failed_step, two.error) == ("load", "BatchError")
    assert f"{manifest}: counts.input_files must be a non-negative integer" in (two.detail or "")
    assert by_site["site01"].load is not None
    assert set(_batches(out / "warehouse.duckdb")) == {"site01"}
    assert summary.exit_code == 3
