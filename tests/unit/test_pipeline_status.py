"""Where each declared site stands: received, verified, loaded, days since, late; `cohortpool status`.

The output folders are written as the pipeline writes them (submission.json, the validated batch's
summary.json); the warehouse part runs on the demo's real warehouse in tests/e2e/test_status_demo.py.
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
from cohortpool.pipeline.status import is_late, late_sites, site_status, status_frame, today_at


def _received(layout: RunLayout, site: str, night: str, files: tuple[int, int, int, int]) -> None:
    folder = layout.submission(site, night)
    folder.mkdir(parents=True)
    counts = dict(zip(("input_files", "deidentified", "quarantined", "duplicate"), files, strict=True))
    (folder / "submission.json").write_text(json.dumps({"site_id": site, "night": night, "counts": counts}))


def _verified(layout: RunLayout, site: str, night: str, rows: dict[str, tuple[int, int]]) -> None:
    folder = layout.validated(site, night)
    folder.mkdir(parents=True)
    tables = {t: {"rows_in": n, "accepted": n - q, "quarantined": q} for t, (n, q) in rows.items()}
    (folder / "summary.json").write_text(json.dumps({"site_id": site, "night": night, "tables": tables}))


@pytest.fixture
def layout(tmp_path: Path) -> RunLayout:
    layout = RunLayout(tmp_path)
    _received(layout, "site01", "2025-03-01", (10, 9, 1, 0))
    _received(layout, "site01", "2025-03-03", (12, 10, 1, 1))
    _verified(layout, "site01", "2025-03-01", {"clinical": (5, 0)})
    _verified(layout, "site01", "2025-03-03", {"clinical": (6, 2), "reads": (20, 1)})
    _received(layout, "site02", "2025-02-20", (3, 3, 0, 0))
    (layout.submission("site02", "2025-03-02")).mkdir(parents=True)  # withheld: no submission.json
    (layout.submission("site02", "2025-03-02") / "release_blocked.json").write_text("{}")
    return layout


SITES = (
    SiteRun(site_id="site01"),
    SiteRun(site_id="site02", expected_every_days=7),
    SiteRun(site_id="site03", expected_every_days=None),
    SiteRun(site_id="site04"),
)


def test_each_site_shows_its_last_nights_and_the_last_nights_counts(layout: RunLayout) -> None:
    statuses = {s.site_id: s for s in site_status(layout, SITES, dt.date(2025, 3, 5))}
    one = statuses["site01"]
    assert (one.last_received, one.last_verified, one.last_loaded) == ("2025-03-03", "2025-03-03", None)
    assert (one.days_since, one.late) == (2, True)
    assert (one.files_in, one.files_quarantined, one.duplicates) == (12, 1, 1)
    assert (one.rows_in, one.rows_quarantined) == (26, 3)
    two = statuses["site02"]  # a withheld night is not received; 13 days > 7
    assert (two.last_received, two.last_verified, two.days_since, two.late) == ("2025-02-20", None, 13, True)
    assert (two.rows_in, two.rows_quarantined) == (None, None)  # not validated: nothing shown
    three = statuses["site03"]  # no cadence: never late
    assert (three.last_received, three.late) == (None, False)
    four = statuses["site04"]
    assert (four.last_received, four.days_since, four.late) == (None, None, True)
    assert four.lateness == "late: nothing received yet"
    assert one.lateness == "late: nothing for 2 days (expected every 1)"
    frame = status_frame(list(statuses.values()))
    assert list(frame["site_id"]) == ["site01", "site02", "site03", "site04"]
    assert list(frame["late"]) == [True, True, False, True]


def test_on_time_is_within_the_cadence(layout: RunLayout) -> None:
    site = SiteRun(site_id="site01", expected_every_days=2)
    assert is_late(site, "2025-03-03", dt.date(2025, 3, 5)) == (False, 2)
    assert is_late(site, "2025-03-03", dt.date(2025, 3, 6)) == (True, 3)
    assert [
        s.site_id for s in late_sites(layout, SITES, ["site02", "site03", "site04"], dt.date(2025, 3, 5))
    ] == [
        "site02",
        "site04",
    ]


def test_today_is_the_sites_own_date() -> None:
    ahead, behind = (
        SiteRun(site_id="a", timezone="Pacific/Kiritimati"),
        SiteRun(site_id="b", timezone="Etc/GMT+12"),
    )
    # UTC+14 and UTC-12 are 26 hours apart: their dates always differ by one or two days
    assert 1 <= (today_at(ahead) - today_at(behind)).days <= 2


def test_status_exits_1_when_a_site_is_late_and_0_when_none_is(
    layout: RunLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "sites.yaml"
    config.write_text(
        "sites:\n  - site_id: site01\n    expected_every_days: 3\n"
        "  - site_id: site03\n    expected_every_days: null\n"
    )
    monkeypatch.setenv("COHORTPOOL_CONFIG", str(config))
    runner = CliRunner()
    on_time = runner.invoke(app, ["status", "--out", str(layout.out), "--date", "2025-03-05", "--json"])
    assert on_time.exit_code == 0, on_time.output
    rows = [json.loads(line) for line in on_time.output.splitlines()]
    assert [(r["site_id"], r["last_received"], r["late"]) for r in rows] == [
        ("site01", "2025-03-03", False),
        ("site03", None, False),
    ]
    config.write_text("sites:\n  - site_id: site01\n    expected_every_days: 1\n  - site_id: site03\n")
    late = runner.invoke(app, ["status", "--out", str(layout.out), "--date", "2025-03-05"])
    assert late.exit_code == 1
    assert "site01: late: nothing for 2 days (expected every 1)" in late.output
    assert "site03: late: nothing received yet" in late.output


def test_status_refuses_bad_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["status", "--out", str(tmp_path / "none")]).exit_code == 2
    bad_date = runner.invoke(app, ["status", "--out", str(tmp_path), "--date", "tomorrow"])
    assert bad_date.exit_code == 2 and "--date 'tomorrow' is not a date" in bad_date.output
    monkeypatch.setenv("COHORTPOOL_CONFIG", str(tmp_path / "empty.yaml"))
    nobody = runner.invoke(app, ["status", "--out", str(tmp_path)])
    assert nobody.exit_code == 2 and "no site is declared" in nobody.output
