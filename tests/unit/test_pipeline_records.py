"""The night's summary: status per site-night, exit code, and the artifacts' content (counts only)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import (
    LoadSummary,
    NightSummary,
    SiteNightOutcome,
    SubmissionSummary,
    ValidationSummary,
)


def _outcome(site: str, files_quarantined: int = 0, rows_quarantined: int = 0) -> SiteNightOutcome:
    counts = {"input_files": 10, "deidentified": 10 - files_quarantined, "quarantined": files_quarantined}
    sub = SubmissionSummary(site, "2025-03-01", Path("s"), "0" * 64, counts, {})
    table = {"rows_in": 5, "accepted": 5 - rows_quarantined, "quarantined": rows_quarantined, "warnings": 1}
    val = ValidationSummary(
        site, "2025-03-01", f"{site}_b", Path("v"), {"clinical": {**table, "rejected": None}}
    )
    load = LoadSummary(site, f"{site}_b", "loaded", 1, {"clinical": 5}, 0)
    return SiteNightOutcome(site, "2025-03-01", sub, val, load)


def test_clean_night_exits_zero_and_any_quarantine_exits_one() -> None:
    assert NightSummary([_outcome("site01")]).exit_code == 0
    assert NightSummary([_outcome("site01"), _outcome("site02", files_quarantined=1)]).exit_code == 1
    assert NightSummary([_outcome("site01", rows_quarantined=2)]).exit_code == 1
    assert NightSummary([], hub_error="WarehouseLockedError").exit_code == 1
    assert NightSummary([]).exit_code == 0  # nothing new is not a failure


def test_a_failed_step_is_named_with_the_error_type_but_not_its_message() -> None:
    failed = SiteNightOutcome("site02", "2025-03-01")
    failed.fail("de-identify", NotADirectoryError("/landing/site02/DOE^JANE_12345/IM0001.dcm"))
    summary = NightSummary([_outcome("site01"), failed], idle_sites=["site03"], unknown_sites=["site99"])
    text = summary.markdown()
    assert failed.status == "failed" and summary.exit_code == 1
    assert "failed at de-identify (NotADirectoryError)" in text
    assert "DOE^JANE" not in text and "12345" not in text  # messages can quote PHI-bearing paths
    assert "Nothing new from: site03" in text and "site99" in text
    rows = summary.quarantine_rows()
    assert [r["site_id"] for r in rows] == ["site01", "site02"]
    assert "DOE^JANE" not in repr(rows)


def test_quarantine_rows_add_up_the_counts_per_site_night() -> None:
    rows = NightSummary([_outcome("site02", files_quarantined=2, rows_quarantined=3)]).quarantine_rows()
    assert rows == [
        {
            "site_id": "site02",
            "night": "2025-03-01",
            "status": "quarantined",
            "files_in": 10,
            "files_quarantined": 2,
            "duplicates": 0,
            "rows_quarantined": 3,
            "rows_with_warnings": 1,
            "tables_rejected": "",
        }
    ]


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
