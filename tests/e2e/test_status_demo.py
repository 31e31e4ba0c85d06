"""On the demo's outputs: `cohortpool status`, and a run summary whose counts agree with its step lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.runconfig import SiteRun
from cohortpool.pipeline.status import site_status, status_frame
from config_support import write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("demo")]
NIGHT = "2025-03-01"
SITES = ("site01", "site02", "site03")


def _status(out: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("cohortpool")), "status", "--out", str(out), *args]
    env = {"COHORTPOOL_CONFIG": str(config), "PATH": "/usr/bin:/bin", "COLUMNS": "100"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


def _expected(out: Path, site: str) -> dict[str, object]:
    """What the status must say, read straight from the demo's files."""
    counts = json.loads((out / "submissions" / site / NIGHT / "submission.json").read_text())["counts"]
    tables = json.loads((out / "validated" / site / NIGHT / "summary.json").read_text())["tables"]
    return {
        "site_id": site,
        "last_received": NIGHT,
        "last_verified": NIGHT,
        "last_loaded": NIGHT,
        "files_in": counts["input_files"],
        "files_quarantined": counts["quarantined"],
        "duplicates": counts["duplicate"],
        "rows_in": sum(t["rows_in"] for t in tables.values()),
        "rows_quarantined": sum(t["quarantined"] for t in tables.values()),
    }


def test_status_on_the_demo_says_what_was_received_verified_and_loaded(
    demo_out: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cohortpool.yaml")  # daily cadence, the default
    on_time = _status(demo_out, config, "--date", "2025-03-02", "--json")
    assert on_time.returncode == 0, on_time.stderr
    rows = [json.loads(line) for line in on_time.stdout.splitlines()]
    for row, site in zip(rows, SITES, strict=True):
        assert {k: row[k] for k in _expected(demo_out, site)} == _expected(demo_out, site)
        assert (row["days_since"], row["late"]) == (1, False)
    assert rows[1]["files_quarantined"] == 2 and rows[1]["rows_quarantined"] == 3  # site02's planted ones

    late = _status(demo_out, config, "--date", "2025-03-05")
    assert late.returncode == 1, late.stderr
    for site in SITES:
        assert f"{site}: late: nothing for 4 days (expected every 1)" in late.stdout

    # what the report's data-quality section is given: the same, as a DataFrame
    frame = status_frame(site_status(RunLayout(demo_out), [SiteRun(site_id=s) for s in SITES]))
    assert list(frame["site_id"]) == list(SITES) and set(frame["last_loaded"]) == {NIGHT}


def test_the_demos_summary_counts_agree_with_its_step_lines(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, demo = demo_run
    text = demo.stdout + demo.stderr
    assert "(out: quarantined)" not in text and "(not written)" not in text
    assert "nightly run: 3 site-night(s): 1 ok, 2 quarantined, 0 failed; exit code 1" in text
    for site in SITES:
        facts = _expected(out, site)
        files_in, quarantined, duplicates = facts["files_in"], facts["files_quarantined"], facts["duplicates"]
        deidentified = int(files_in) - int(quarantined) - int(duplicates)  # type: ignore[call-overload]
        step = f"{site} {NIGHT}: {files_in} files in: {deidentified} de-identified, {quarantined} quarantined"
        assert step in " ".join(text.split()), (step, text[-3000:])
        row = re.search(rf"^{site} +{NIGHT} +(\w+) +([0-9 ]+)$", text, re.MULTILINE)
        assert row is not None, text[-3000:]
        assert row.group(1) == ("ok" if site == "site01" else "quarantined")
        cells = row.group(2).split()
        rows_in, rows_quarantined = facts["rows_in"], facts["rows_quarantined"]
        loaded = int(rows_in) - int(rows_quarantined)  # type: ignore[call-overload]
        expected = (files_in, deidentified, quarantined, duplicates, rows_in, loaded, rows_quarantined)
        assert cells == [str(v) for v in expected]
