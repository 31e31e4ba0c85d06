"""Withdrawal end to end on the synthetic consortium: a site re-delivers a night with one patient in
withdrawn.csv (local MRN), and synth -> deid -> validate -> load leaves nothing of that patient in the
warehouse but its pseudonym, the night and the fact; the same deliveries give the same checksum."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from cohortpool.synth import write_consortium
from cohortpool.validate import validate_submission
from cohortpool.warehouse import checksum, load_batch
from warehouse_batches import warehouse_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "e406c806a50de203ce9f6b09f34a31b7e917ba4730a3303515cf00c088f149d2"
SITE = "site01"


def _options(vault: Path) -> list[str]:
    return ["--site", SITE, "--vault", str(vault), "--workers", "1"]


def _deid(drop: Path, out: Path, vault: Path) -> None:
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET}
    done = subprocess.run(
        [sys.executable, "-m", "cohortpool", "deid", str(drop), str(out), *_options(vault)],
        capture_output=True,
        text=True,
        env=env,
    )
    # exit 1: something quarantined, which the consortium plants on purpose
    assert done.returncode in (0, 1), done.stderr[-3000:]


def _first_mrn(drop: Path) -> str:
    with (drop / "clinical.csv").open(encoding="utf-8", newline="") as handle:
        return next(csv.DictReader(handle))["mrn"]


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The night as first sent, and the same night re-delivered with one patient withdrawn."""
    root = tmp_path_factory.mktemp("withdrawal")
    write_consortium(root / "landing", sites=1, max_patients=4)
    first = next((root / "landing" / SITE).iterdir())
    again = root / "again" / first.name
    shutil.copytree(first, again)
    (again / "withdrawn.csv").write_text(f"mrn\n{_first_mrn(first)}\n", encoding="utf-8")
    out: dict[str, Path] = {}
    for name, drop in (("first", first), ("again", again)):
        _deid(drop, root / "submissions" / name, root / "vault")
        validate_submission(root / "submissions" / name, root / "validated" / name)
        out[name] = root / "validated" / name
    out["withdrawn_csv"] = root / "submissions" / "again" / "withdrawn.csv"
    return out


def test_the_withdrawn_patient_leaves_only_the_fact(tmp_path: Path, delivered: dict[str, Path]) -> None:
    with delivered["withdrawn_csv"].open(encoding="utf-8", newline="") as handle:
        (withdrawn,) = list(csv.DictReader(handle))
    gone = withdrawn["patient_id"]
    db = tmp_path / "w.duckdb"
    load_batch(db, delivered["first"])
    with duckdb.connect(str(db), read_only=True) as con:
        before = con.execute("SELECT count(*) FROM analysis.patients").fetchone()[0]
        assert con.execute(
            "SELECT count(*) FROM analysis.patients WHERE patient_id = ?", [gone]
        ).fetchone() == (1,)
    result = load_batch(db, delivered["again"])
    assert result.withdrawn_patients == 1

    holding = {
        table: n
        for table, rows in warehouse_rows(db).items()
        if (n := sum(gone in repr(row) for row in rows))
    }
    assert holding == {"raw.withdrawals": 1}
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM analysis.patients").fetchone() == (before - 1,)
        assert con.execute(
            "SELECT count(*) FROM analysis.patients_asof(1) WHERE patient_id = ?", [gone]
        ).fetchone() == (0,)
        assert con.execute("SELECT patient_id, site_id FROM raw.withdrawals").fetchall() == [(gone, SITE)]

    # same deliveries, same warehouse content
    other = tmp_path / "other.duckdb"
    load_batch(other, delivered["first"])
    load_batch(other, delivered["again"])
    assert checksum(other) == checksum(db)
    for seq in (1, 2):
        assert checksum(other, as_of_seq=seq) == checksum(db, as_of_seq=seq)
