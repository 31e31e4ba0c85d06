"""The night's summary: status per site-night, exit code, and the artifacts' content (counts only)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import (
    ROW_COUNTS,
    LateSite,
    LoadSummary,
    NightFailed,
    NightSummary,
    SiteNightOutcome,
    SubmissionSummary,
    ValidationSummary,
    summary_of,
)


def _outcome(site: str, files_quarantined: int = 0, rows_quarantined: int = 0) -> SiteNightOutcome:
    counts = {"input_files": 10, "deidentified": 10 - files_quarantined, "quarantined": files_quarantined}
    sub = SubmissionSummary(site, "2025-03-01", Path("s"), "0" * 64, counts, {})
    table = {"rows_in": 5, "accepted": 5 - rows_quarantined, "quarantined": rows_quarantined, "warnings": 1}
    val = ValidationSummary(
        site, "2025-03-01", f"{site}_b", Path("v"), {"clinical": {**table, "rejected": None}}
    )
    load = LoadSummary(site, f"{site}_b", "loaded", 1, {"clinical": 5 - rows_quarantined}, 0)
    return SiteNightOutcome(site, "2025-03-01", sub, val, load)


def test_exit_codes_follow_the_contract() -> None:
    """0 everything done; 1 done, something quarantined; 3 a site or the consortium step failed."""
    assert NightSummary([_outcome("site01")]).exit_code == 0
    assert NightSummary([_outcome("site01"), _outcome("site02", files_quarantined=1)]).exit_code == 1
    assert NightSummary([_outcome("site01", rows_quarantined=2)]).exit_code == 1
    assert NightSummary([], hub_error="WarehouseLockedError").exit_code == 3
    failed = SiteNightOutcome("site02", "2025-03-01")
    failed.fail("fetch", RuntimeError("down"))
    assert NightSummary([_outcome("site01", files_quarantined=1), failed]).exit_code == 3
    assert NightSummary([]).exit_code == 0  # nothing new is not a failure
    late = LateSite("site03", "2025-02-01", 28, 1.0)
    assert NightSummary([_outcome("site01")], late=[late]).exit_code == 0  # `cohortpool status` says late


def test_instances_refused_at_fetch_make_a_clean_night_exit_1_and_are_in_the_headline() -> None:
    """Input refused is input refused, whether by validation or by the fetch from the PACS."""
    summary = NightSummary([_outcome("site01")], fetch_refused={"site01": 2})
    assert summary.exit_code == 1
    assert "2 PACS instance(s) refused at fetch; exit code 1" in summary.headline()
    assert "refused at fetch" not in NightSummary([_outcome("site01")]).headline()


def test_a_failed_step_is_named_with_the_error_type_but_not_its_message() -> None:
    failed = SiteNightOutcome("site02", "2025-03-01")
    failed.fail("de-identify", NotADirectoryError("/landing/site02/DOE^JANE_12345/IM0001.dcm"))
    summary = NightSummary([_outcome("site01"), failed], idle_sites=["site03"], unknown_sites=["site99"])
    text = summary.markdown()
    assert failed.status == "failed" and summary.exit_code == 3
    assert "failed at de-identify: NotADirectoryError" in text
    assert "DOE^JANE" not in text and "12345" not in text  # messages can quote PHI-bearing paths
    assert "Nothing new from: site03" in text and "site99" in text
    rows = summary.rows()
    assert [r["site_id"] for r in rows] == ["site01", "site02"]
    assert "DOE^JANE" not in repr(rows) and "DOE^JANE" not in summary.state_message()
    assert summary.state_message().startswith("failed: site02 2025-03-01 at de-identify (NotADirectoryError)")
    # nothing is shown for the steps that did not run
    assert rows[1]["files_in"] is None and rows[1]["rows_loaded"] is None


def test_rows_add_up_and_agree_with_the_per_step_lines() -> None:
    outcome = _outcome("site02", files_quarantined=2, rows_quarantined=3)
    rows = NightSummary([outcome]).rows()
    assert rows == [
        {
            "site_id": "site02",
            "night": "2025-03-01",
            "status": "quarantined",
            "files_in": 10,
            "deidentified": 8,
            "files_quarantined": 2,
            "duplicates": 0,
            "rows_in": 5,
            "rows_loaded": 2,
            "rows_quarantined": 3,
            "rows_with_warnings": 1,
            "tables_rejected": "",
        }
    ]
    row = rows[0]
    assert row["files_in"] == row["deidentified"] + row["files_quarantined"] + row["duplicates"]
    assert row["rows_in"] == row["rows_loaded"] + row["rows_quarantined"]
    assert outcome.submission is not None and outcome.validation is not None and outcome.load is not None
    assert outcome.submission.line() == "10 files in: 8 de-identified, 2 quarantined, 0 duplicates"
    assert outcome.validation.line() == "5 rows in: 2 accepted, 3 quarantined (batch site02_b)"
    assert outcome.load.line() == "2 rows loaded (load 1)"


def test_a_late_site_gets_its_own_row_and_no_counts() -> None:
    summary = NightSummary(
        [_outcome("site01")],
        idle_sites=["site02", "site03"],
        late=[LateSite("site03", "2025-02-01", 28, 1.0), LateSite("site04", None, None, 7.0)],
    )
    rows = summary.rows()
    assert [(r["site_id"], r["night"], r["status"]) for r in rows] == [
        ("site01", "2025-03-01", "ok"),
        ("site03", "2025-02-01", "late (28 days; expected every 1)"),
        ("site04", "never", "late (nothing received yet; expected every 7)"),
    ]
    assert all(rows[-1][k] is None for k in ROW_COUNTS)
    assert "Nothing new from: site02." in summary.markdown()  # site03 is listed as late, not as idle
    assert summary.headline() == "1 site-night(s): 1 ok, 0 quarantined, 0 failed; 2 site(s) late; exit code 0"


def test_a_failed_night_travels_as_an_exception_carrying_its_summary() -> None:
    failed = SiteNightOutcome("site02", "2025-03-01")
    failed.fail("de-identify", RuntimeError("x"))
    summary = NightSummary([failed])
    error = pickle.loads(pickle.dumps(NightFailed(summary)))  # Prefect may persist it
    assert summary_of(error) == summary and summary_of(summary) is summary and summary_of(None) is None
    assert str(error) == summary.state_message() and "\n" not in str(error)


def test_run_layout_keeps_site_private_folders_apart_from_what_leaves_the_site(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path)
    assert layout.submission("site01", "2025-03-01") == tmp_path / "submissions" / "site01" / "2025-03-01"
    assert not layout.vault("site01").is_relative_to(layout.submissions)
    assert layout.results.is_relative_to(tmp_path) and layout.scratch.is_relative_to(tmp_path)


def test_a_second_run_on_the_same_folder_says_it_waits_then_runs(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from cohortpool.pipeline.layout import RunLayout\n"
        "with RunLayout(Path(sys.argv[1])).exclusive(on_wait=print):\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(2)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        said: list[str] = []
        started = time.monotonic()
        with layout.exclusive(on_wait=said.append):
            waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert waited >= 0.5
    assert said == [f"another run (pid {holder.pid}) is using {tmp_path}: waiting for it to finish"]
    with layout.exclusive(on_wait=said.append):  # free again: no waiting
        pass
    assert len(said) == 1


def test_a_second_run_that_will_not_wait_is_told_the_holder_pid(tmp_path: Path) -> None:
    from cohortpool.pipeline.layout import FolderBusyError

    layout = RunLayout(tmp_path)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from cohortpool.pipeline.layout import RunLayout\n"
        "with RunLayout(Path(sys.argv[1])).exclusive(on_wait=print):\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(30)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        said: list[str] = []
        started = time.monotonic()
        with pytest.raises(FolderBusyError) as refused, layout.exclusive(on_wait=said.append, wait=False):
            pass
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert refused.value.pid == holder.pid
    assert str(refused.value) == f"another run (pid {holder.pid}) is using {tmp_path}"
    assert said == []
    with layout.exclusive(on_wait=said.append, wait=False):  # the holder was killed: the kernel freed it
        assert layout.lock_file.read_text().strip() == str(os.getpid())
