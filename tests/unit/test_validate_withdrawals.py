"""withdrawn.csv at the hub: checked by validation, passed into the validated batch, applied by the load."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner
from validate_support import copy_clean, lines, read_rows, write_rows

from cohortpool.cli import app
from cohortpool.validate import validate_submission
from cohortpool.warehouse import load_batch

pytestmark = pytest.mark.slow

SITE = "site02"


def _withdraw(
    submission: Path, rows: list[dict[str, str]], header: tuple[str, ...] = ("site_id", "patient_id")
) -> None:
    write_rows(submission / "withdrawn.csv", list(header), rows)


def _drop_patient(submission: Path, patient_id: str) -> None:
    """What the site does for a withdrawn patient: none of their rows leave."""
    for table in ("clinical", "reads", "imaging_manifest"):
        header, rows = read_rows(submission / f"{table}.csv")
        write_rows(submission / f"{table}.csv", header, [r for r in rows if r["patient_id"] != patient_id])


def _patients(submission: Path) -> list[str]:
    return [r["patient_id"] for r in read_rows(submission / "clinical.csv")[1]]


def test_withdrawals_pass_into_the_batch_and_bad_rows_are_quarantined(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    gone = _patients(sub)[0]
    _drop_patient(sub, gone)
    _withdraw(
        sub,
        [
            {"site_id": SITE, "patient_id": gone},
            {"site_id": SITE, "patient_id": gone},  # listed twice: kept once
            {"site_id": "site01", "patient_id": "P0000000000000001"},  # another site's patient
            {"site_id": SITE, "patient_id": "MRN 12345"},  # not a pseudonym: never repeated
        ],
    )
    outcome = validate_submission(sub, tmp_path / "validated")
    out = tmp_path / "validated"

    passed = pd.read_csv(out / "withdrawn.csv", dtype=str)
    assert passed.to_dict("records") == [{"site_id": SITE, "patient_id": gone}]
    refused = lines(out, "quarantine.csv")
    refused = refused[refused["table"] == "withdrawn"]
    assert refused["source_row"].tolist() == ["3", "4"]
    assert refused["key"].tolist() == ["P0000000000000001", ""]
    assert "a site withdraws only its own patients" in refused["reason"].iloc[0]
    assert "MRN" not in (out / "quarantine.csv").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["withdrawn"] == {
        "file": "withdrawn.csv",
        "source_sha256": summary["withdrawn"]["source_sha256"],
        "rows_in": 4,
        "accepted": 1,
        "duplicates": 1,  # every row accounted for: 4 = 1 + 1 + 2
        "quarantined": 2,
    }
    assert summary["status"] == "issues" and outcome.exit_code == 1


def test_an_unreadable_withdrawal_list_applies_nothing_and_says_so(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    _withdraw(sub, [{"patient_id": _patients(sub)[0]}], header=("patient_id",))
    outcome = validate_submission(sub, tmp_path / "validated")
    out = tmp_path / "validated"
    assert pd.read_csv(out / "withdrawn.csv", dtype=str).empty
    refused = lines(out, "quarantine.csv")
    refused = refused[refused["table"] == "withdrawn"]
    assert len(refused) == 1
    assert "no withdrawal of this submission was applied" in refused["reason"].iloc[0]
    assert outcome.exit_code == 1


def test_a_submission_without_withdrawals_gets_no_withdrawal_file(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    validate_submission(sub, tmp_path / "validated")
    assert not (tmp_path / "validated" / "withdrawn.csv").exists()
    assert "withdrawn" not in json.loads((tmp_path / "validated" / "summary.json").read_text())


def test_validated_withdrawal_loads_and_erases_the_patient(tmp_path: Path) -> None:
    """Night 1 as sent; night 2 withdraws one patient: the real validate and load path."""
    first = copy_clean(tmp_path / "night1")
    gone = _patients(first)[0]
    validate_submission(first, tmp_path / "validated1")
    second = copy_clean(tmp_path / "night2")
    (second / "submission.json").write_text(json.dumps({"site_id": SITE, "night": "2025-03-02"}))
    _drop_patient(second, gone)
    _withdraw(second, [{"site_id": SITE, "patient_id": gone}])
    validate_submission(second, tmp_path / "validated2")

    db = tmp_path / "w.duckdb"
    load_batch(db, tmp_path / "validated1")
    with duckdb.connect(str(db), read_only=True) as con:
        before = con.execute("SELECT count(*) FROM analysis.patients").fetchone()[0]
    result = load_batch(db, tmp_path / "validated2")
    assert result.withdrawn_patients == 1 and result.erased_rows > 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM analysis.patients").fetchone() == (before - 1,)
        for table in ("clinical", "reads", "imaging_manifest"):
            assert con.execute(
                f"SELECT count(*) FROM raw.{table} WHERE patient_id = ?", [gone]
            ).fetchone() == (0,)
        assert con.execute(
            "SELECT site_id, patient_id, CAST(night AS VARCHAR) FROM raw.withdrawals"
        ).fetchall() == [(SITE, gone, "2025-03-02")]
        files = {
            f
            for (f,) in con.execute(
                "SELECT file FROM raw.batch_files WHERE batch_id = ?", [result.batch_id]
            ).fetchall()
        }
    assert "withdrawn.csv" in files


def test_cli_names_the_withdrawals_and_exits_1_when_one_is_refused(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    gone = _patients(sub)[0]
    _drop_patient(sub, gone)
    _withdraw(sub, [{"site_id": SITE, "patient_id": gone}, {"site_id": SITE, "patient_id": "not one"}])
    result = CliRunner().invoke(app, ["validate", str(sub), "--out", str(tmp_path / "out")])
    assert "withdrawn: 1 patient(s) passed to the batch, 1 row(s) quarantined" in result.output
    assert result.exit_code == 1
