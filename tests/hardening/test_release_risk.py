"""The re-identification risk of a submission is reported, and a configured minimum k blocks its release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import cli

from cohortpool.synth import write_consortium

pytestmark = [pytest.mark.xdist_group("hardening-release"), pytest.mark.integration]


def test_k_anonymity_is_reported_and_a_minimum_withholds_the_submission(tmp_path: Path) -> None:
    write_consortium(tmp_path / "landing", sites=1, max_patients=3)
    drop = next((tmp_path / "landing" / "site01").iterdir())
    out, vault = tmp_path / "submission", tmp_path / "vault"
    args = ("deid", str(drop), str(out), "--site", "site01", "--vault", str(vault), "--workers", "1")

    blocked = cli(*args, env={"COHORTPOOL_MIN_K_ANONYMITY": "2"})
    assert blocked.returncode == 1, blocked.stderr
    assert "release blocked: k-anonymity 1 is below the minimum 2" in blocked.stderr
    assert not (out / "submission.json").exists()
    privacy = json.loads((out / "release_blocked.json").read_text())["privacy"]
    assert privacy["release_blocked"] is True and privacy["rows_below_min_k"] == 3
    # the hub cannot take a withheld folder for a submission
    refused = cli("validate", str(out), "--out", str(tmp_path / "validated"))
    assert refused.returncode == 2
    assert "withheld" in refused.stderr and "release_blocked.json" in refused.stderr

    released = cli(*args)  # the default: the check is off, k is still reported
    assert released.returncode == 0, released.stderr
    assert not (out / "release_blocked.json").exists()
    privacy = json.loads((out / "submission.json").read_text())["privacy"]
    assert privacy["k_anonymity"] == 1 and privacy["min_k_anonymity"] == 0
    assert privacy["quasi_identifiers"] == ["age_years", "sex", "site_id", "first_exam_date"]
    assert "release_blocked.json" not in json.loads((out / "submission.json").read_text())["files"]
