"""`cohortpool status` with one site's folders odd: every site is still shown, the odd one with a problem.

Real output folders as a hand copy or a wrong clock leaves them: a submission.json whose ``counts`` is not
an object or that is not JSON at all, a validated batch's summary.json that is not one, a night dated in
the future. Exit 3 when a site has a problem (README, "Exit codes"), 1 when a site is only late.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.runconfig import SiteRun
from cohortpool.pipeline.status import late_sites, site_status, today_at

COUNTS = {"input_files": 12, "deidentified": 10, "quarantined": 1, "duplicate": 1}
FUTURE = "2999-01-01"


def _received(layout: RunLayout, site: str, night: str, text: str | None = None) -> Path:
    folder = layout.submission(site, night)
    folder.mkdir(parents=True)
    manifest = folder / "submission.json"
    manifest.write_text(text or json.dumps({"site_id": site, "night": night, "counts": COUNTS}))
    return manifest


def _status(out: Path, config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["status", "--out", str(out), *args], env={"COHORTPOOL_CONFIG": str(config)}
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(
        "sites:\n"
        "  - site_id: site01\n    expected_every_days: 3\n"
        "  - site_id: site02\n    expected_every_days: 3\n"
        "  - site_id: site03\n    expected_every_days: 3\n"
    )
    return path


def test_counts_that_are_a_list_do_not_hide_the_other_sites(tmp_path: Path, config: Path) -> None:
    layout = RunLayout(tmp_path / "out")
    _received(layout, "site01", "2025-03-04")
    listed = _received(layout, "site02", "2025-03-04", json.dumps({"site_id": "site02", "counts": [1, 2]}))
    broken = _received(layout, "site03", "2025-03-04", '{"site_id": "site03", "night": ')

    code, output = _status(layout.out, config, "--date", "2025-03-05", "--json")

    assert code == 3, output
    rows = {r["site_id"]: r for r in map(json.loads, output.splitlines())}
    assert list(rows) == ["site01", "site02", "site03"]
    assert (rows["site01"]["files_in"], rows["site01"]["problems"]) == (12, [])
    for site, manifest, why in (
        ("site02", listed, "counts is a JSON list, not an object"),
        ("site03", broken, "not readable JSON"),
    ):
        row = rows[site]
        assert (row["last_received"], row["days_since"], row["late"], row["files_in"]) == (
            "2025-03-04",
            1,
            False,
            None,
        )
        [problem] = row["problems"]
        assert problem.startswith(f"unreadable manifest: {manifest} ({why}")
        assert "have the site package the night again and push it" in problem

    code, output = _status(layout.out, config, "--date", "2025-03-05")
    assert code == 3
    assert "Traceback" not in output
    text = " ".join(output.split())  # the table and lines as printed, whatever the terminal's width
    assert f"site02: unreadable manifest: {listed} (counts is a JSON list, not an object)" in text
    assert f"site03: unreadable manifest: {broken} (not readable JSON" in text
    assert "site01 2025-03-04" in text


def test_a_problem_outranks_a_late_site_and_both_are_printed(tmp_path: Path, config: Path) -> None:
    layout = RunLayout(tmp_path / "out")
    _received(layout, "site01", "2025-02-01")  # late: 32 days > 3
    _received(layout, "site02", "2025-03-04", json.dumps({"site_id": "site02", "night": "2025-03-04"}))
    _received(layout, "site03", "2025-03-04")

    code, output = _status(layout.out, config, "--date", "2025-03-05")

    assert code == 3
    text = " ".join(output.split())
    assert "site01: late: nothing for 32 days (expected every 3)" in text
    assert "site02: unreadable manifest:" in text and "(counts is missing)" in text

    layout_late_only = RunLayout(tmp_path / "late")
    _received(layout_late_only, "site01", "2025-02-01")
    assert _status(layout_late_only.out, config, "--date", "2025-03-05")[0] == 1


def test_an_unreadable_batch_summary_shows_the_night_without_its_rows(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path / "out")
    _received(layout, "site01", "2025-03-04")
    summary = layout.validated("site01", "2025-03-04") / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"tables": [{"rows_in": 3}]}))

    [status] = site_status(layout, [SiteRun(site_id="site01")], dt.date(2025, 3, 5), warehouse=False)

    assert (status.last_verified, status.files_in, status.rows_in) == ("2025-03-04", 12, None)
    [problem] = status.problems
    assert problem.startswith(f"unreadable batch summary: {summary} (tables is not an object of tables)")


def test_a_night_in_the_future_is_not_the_last_night(tmp_path: Path, config: Path) -> None:
    layout = RunLayout(tmp_path / "out")
    _received(layout, "site01", "2025-03-03")
    future = _received(layout, "site01", FUTURE).parent
    _received(layout, "site02", FUTURE)  # its only night: nothing valid received
    _received(layout, "site03", "2025-03-04")
    sites = [SiteRun(site_id=s, expected_every_days=1) for s in ("site01", "site02", "site03")]

    one, two, three = site_status(layout, sites, dt.date(2025, 3, 5), warehouse=False)

    assert (one.last_received, one.days_since, one.late) == ("2025-03-03", 2, True)
    assert one.files_in == 12  # the counts are those of the night counted
    [problem] = one.problems
    assert problem.startswith(
        f"night in the future: {future} is dated after today at the site ({today_at(sites[0])}"
    )
    assert "check the site's clock and its timezone in cohortpool.yaml" in problem
    assert (two.last_received, two.days_since, two.late, two.lateness) == (
        None,
        None,
        True,
        "late: nothing received yet",
    )
    assert len(two.problems) == 1 and FUTURE in two.problems[0]
    assert (three.last_received, three.days_since, three.problems) == ("2025-03-04", 1, ())

    # today at the site (no --date): the days since the last night are never negative
    [now] = site_status(layout, sites[:1], warehouse=False)
    assert now.last_received == "2025-03-03" and now.days_since is not None and now.days_since > 0

    # the nightly run's late sites agree: a future night does not keep a quiet site from being late
    assert [s.site_id for s in late_sites(layout, sites, ["site01", "site02"], dt.date(2025, 3, 5))] == [
        "site01",
        "site02",
    ]

    code, output = _status(layout.out, config, "--date", "2025-03-05")
    assert code == 3
    assert f"site01: night in the future: {future}" in " ".join(output.split())


def test_a_night_after_the_day_measured_on_is_not_counted_but_is_no_problem(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path / "out")
    _received(layout, "site01", "2025-03-01")
    _received(layout, "site01", "2025-03-03")
    site = SiteRun(site_id="site01", expected_every_days=3)

    [status] = site_status(layout, [site], dt.date(2025, 3, 2), warehouse=False)

    # as of 2025-03-02 the night of 2025-03-03 had not come: the last night was 2025-03-01, a day before
    assert (status.last_received, status.days_since, status.late, status.problems) == (
        "2025-03-01",
        1,
        False,
        (),
    )
