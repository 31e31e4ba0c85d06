"""synth -> deid each site -> validate: exactly the planted `stage: validate` defects are quarantined.

Runs the real stages (``cohortpool synth`` and ``cohortpool deid`` as commands, validation as a library
call) on a small synthetic consortium, then compares quarantine.csv with ``_truth.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cohortpool.validate import validate_submission
from config_support import write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = "2025-03-01"
SITES = ("site01", "site02", "site03")
#: planted kind -> the checks that must name it (first) and others that may also fire on that row
KIND_CHECKS: dict[str, tuple[set[str], set[str]]] = {
    "sex_text": ({"column_values_to_be_in_set(sex)"}, set()),
    "bmi_typo": ({"column_values_to_be_between(bmi)"}, set()),
    # the site stage derives age from the dates; an impossible birth date leaves no valid age
    "birth_after_exam": (
        {"column_values_to_be_between(age_years)", "column_values_to_not_be_null(age_years)"},
        set(),
    ),
    "duplicate_read": ({"compound_columns_to_be_unique(patient_id, level, modality)"}, set()),
    # an MRN nobody has has no imaging either
    "orphan_read": ({"crosstable:read_patient_in_clinical"}, {"crosstable:read_has_matching_study"}),
    "unknown_level": ({"column_values_to_be_in_set(level)"}, set()),
}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cohortpool", *args], capture_output=True, text=True, env=env, check=False
    )


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("consortium")
    env = {
        **os.environ,
        "COHORTPOOL_SECRET": "9967cf7921292bdf04cc3268ae19ffc60cb645ec7ca9c8b8006212237be9f5a8",
        "COHORTPOOL_CONFIG": str(write_config(root / "cohortpool.yaml")),
    }
    synth = _cli(
        "synth", str(root / "landing"), "--sites", "3", "--seed", "7", "--max-patients", "12", env=env
    )
    assert synth.returncode == 0, synth.stderr[-2000:]
    outcomes = {}
    for site in SITES:
        deid = _cli(
            "deid",
            str(root / "landing" / site / NIGHT),
            str(root / "submissions" / site),
            "--site",
            site,
            "--vault",
            str(root / "vault" / site),
            "--workers",
            "1",
            env=env,
        )
        assert deid.returncode in (0, 1), deid.stderr[-2000:]
        outcomes[site] = validate_submission(root / "submissions" / site, root / "validated" / site)
    return root, outcomes


def _quarantine(root: Path, site: str) -> pd.DataFrame:
    return pd.read_csv(root / "validated" / site / "quarantine.csv", dtype=str, keep_default_na=False)


def test_clean_site_has_nothing_quarantined(consortium: tuple[Path, dict[str, object]]) -> None:
    root, outcomes = consortium
    assert len(_quarantine(root, "site01")) == 0
    assert outcomes["site01"].exit_code == 0  # type: ignore[attr-defined]


def test_exactly_the_planted_validate_defects_are_quarantined_for_the_right_reason(
    consortium: tuple[Path, dict[str, object]],
) -> None:
    root, _ = consortium
    truth = json.loads((root / "landing" / "_truth.json").read_text())["defects"]
    planted = [d for d in truth if d["stage"] == "validate"]
    assert planted, "the synthetic consortium planted no table defects"
    expected_rows = {(d["site_id"], d["table"], int(d["row"])) for d in planted}
    got_rows = set()
    for site in SITES:
        quarantine = _quarantine(root, site)
        got_rows |= {
            (site, t, int(r)) for t, r in zip(quarantine["table"], quarantine["source_row"], strict=True)
        }
    assert got_rows == expected_rows
    for defect in planted:
        quarantine = _quarantine(root, defect["site_id"])
        at_row = quarantine[
            (quarantine["table"] == defect["table"]) & (quarantine["source_row"] == str(defect["row"]))
        ]
        checks = set(at_row["expectation"])
        required, allowed = KIND_CHECKS[defect["kind"]]
        assert checks & required, (defect["kind"], checks)
        assert checks <= required | allowed, (defect["kind"], checks)
        assert all(reason for reason in at_row["reason"])


def test_every_row_is_accounted_for_at_every_site(consortium: tuple[Path, dict[str, object]]) -> None:
    root, _ = consortium
    for site in SITES:
        summary = json.loads((root / "validated" / site / "summary.json").read_text())
        for table, counts in summary["tables"].items():
            assert counts["rejected"] is None, (site, table)
            assert counts["rows_in"] == counts["accepted"] + counts["quarantined"], (site, table)
            submitted = pd.read_csv(root / "submissions" / site / f"{table}.csv")
            assert counts["rows_in"] == len(submitted), (site, table)


def test_both_engines_flag_the_same_rows_of_the_consortiums_defects(
    consortium: tuple[Path, dict[str, object]],
) -> None:
    """The synthetic consortium's planted defects, through GX on pandas and through the generated SQL."""
    from cohortpool.validate.frames import read_table
    from cohortpool.validate.run import SuiteRunner
    from cohortpool.validate.suites import TABLES, load_suite

    root, _ = consortium
    runners = {engine: SuiteRunner(engine) for engine in ("duckdb", "gx")}
    flagged = 0
    for site in SITES:
        for table in TABLES:
            suite = load_suite(table)
            frames = read_table(root / "submissions" / site, suite)
            runs = {engine: runner.run(suite, frames, site) for engine, runner in runners.items()}
            assert runs["duckdb"].by_gx == {}, (site, table)
            found = {
                engine: sorted((str(f.position), f.expectation, f.severity, f.value) for f in run.findings)
                for engine, run in runs.items()
            }
            assert found["duckdb"] == found["gx"], (site, table)
            outcomes = {
                engine: [(o.expectation, o.success, o.unexpected_count, o.errored) for o in run.outcomes]
                for engine, run in runs.items()
            }
            assert outcomes["duckdb"] == outcomes["gx"], (site, table)
            flagged += len(found["duckdb"])
    assert flagged > 0  # the consortium's defects were there to be found
