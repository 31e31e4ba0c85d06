"""Nights through the nightly flow in the order real sites deliver them: twice, skipped, out of order.

Night 2025-03-03 is night 2025-03-01 re-sent with one patient's DXA T-score corrected; 2025-03-02 never
comes (a skipped night). Whatever order the nights arrive in, the warehouse ends up where delivery in
night order leaves it: the newest night's values current, older ones kept as history.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import NightSummary, summary_of
from cohortpool.synth import write_consortium
from cohortpool.warehouse import checksum

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("prefect")]
FIRST, LATER = "2025-03-01", "2025-03-03"
CORRECTED = "-3.9"


def _summary(state: Any) -> NightSummary:
    summary = summary_of(state.result(raise_on_failure=False))  # a failed night carries it too
    assert summary is not None, state
    return summary


@pytest.fixture(scope="module")
def drops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """site01's two nights, built once: the original and its later correction."""
    root = tmp_path_factory.mktemp("nights")
    write_consortium(root, sites=1, max_patients=3)
    first = root / "site01" / FIRST
    later = root / "site01" / LATER
    shutil.copytree(first, later)
    _correct_first_patient(later / "clinical.csv")
    return {FIRST: first, LATER: later}


def _correct_first_patient(clinical: Path) -> None:
    with clinical.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[0]["dxa_t_score"] = CORRECTED
    with clinical.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _landing(root: Path) -> Path:
    landing = root / "landing"
    for site in ("site01", "site02", "site03"):  # the configured sites; only site01 sends anything
        (landing / site).mkdir(parents=True, exist_ok=True)
    return landing


def _deliver(landing: Path, drops: dict[str, Path], night: str) -> None:
    shutil.copytree(drops[night], landing / "site01" / night)


def _t_scores(db: Path) -> list[float]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT dxa_t_score FROM analysis.patients ORDER BY 1").fetchall()]


@pytest.fixture(scope="module")
def in_order(
    run_nightly: Callable[..., Any], drops: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> RunLayout:
    """Both nights delivered on time (one run each)."""
    root = tmp_path_factory.mktemp("in-order")
    landing, layout = _landing(root), RunLayout(root / "out")
    for night in (FIRST, LATER):
        _deliver(landing, drops, night)
        assert _summary(run_nightly(landing, layout.out)).outcomes[0].load is not None
    return layout


def test_an_older_night_arriving_after_a_newer_one_does_not_undo_it(
    in_order: RunLayout, drops: dict[str, Path], run_nightly: Callable[..., Any], tmp_path: Path
) -> None:
    landing, layout = _landing(tmp_path), RunLayout(tmp_path / "out")
    _deliver(landing, drops, LATER)
    run_nightly(landing, layout.out)
    _deliver(landing, drops, FIRST)  # the site's resend of an older night comes in late
    summary = _summary(run_nightly(landing, layout.out))
    (late,) = summary.outcomes
    assert (late.night, late.status) == (FIRST, "ok")
    assert late.load is not None and late.load.status == "loaded"
    assert late.load.superseded == 0 and late.load.late_rows > 0
    assert "kept as history" in summary.markdown()
    assert float(CORRECTED) in _t_scores(layout.warehouse)
    assert checksum(layout.warehouse) == checksum(in_order.warehouse)


def test_the_same_night_delivered_twice_changes_nothing_and_a_changed_resend_replaces_it(
    drops: dict[str, Path], run_nightly: Callable[..., Any], tmp_path: Path
) -> None:
    landing, layout = _landing(tmp_path), RunLayout(tmp_path / "out")
    _deliver(landing, drops, FIRST)
    run_nightly(landing, layout.out)
    before = checksum(layout.warehouse)
    shutil.rmtree(landing / "site01" / FIRST)
    _deliver(landing, drops, FIRST)  # delivered again, same bytes, new timestamps
    summary = _summary(run_nightly(landing, layout.out))
    assert summary.outcomes == [] and checksum(layout.warehouse) == before
    _correct_first_patient(landing / "site01" / FIRST / "clinical.csv")  # re-sent with a correction
    summary = _summary(run_nightly(landing, layout.out))
    (again,) = summary.outcomes
    assert again.load is not None and again.load.status == "loaded" and again.load.superseded > 0
    assert float(CORRECTED) in _t_scores(layout.warehouse)
    assert checksum(layout.warehouse) != before


def test_after_a_skipped_night_the_next_one_loads_normally(in_order: RunLayout) -> None:
    with duckdb.connect(str(in_order.warehouse), read_only=True) as con:
        nights = con.execute(
            "SELECT CAST(night AS VARCHAR), superseded_rows, late_rows "
            "FROM analysis.batches ORDER BY load_seq"
        ).fetchall()
    assert [n for n, _, _ in nights] == [FIRST, LATER]  # 2025-03-02 never came
    assert nights[1][1] > 0 and nights[1][2] == 0
    assert float(CORRECTED) in _t_scores(in_order.warehouse)
