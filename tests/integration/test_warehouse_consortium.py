"""The warehouse on the synthetic consortium: synth -> deid -> validate -> load, with the views'
numbers checked against pandas counts computed independently from the submission CSVs.

Expected counts follow the contract's definitions: a row is in the warehouse when validation accepted
it (its source_row is not in quarantine.csv), and the analysis sets hold the accepted rows of patients
with an accepted clinical row.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cohortpool.contract import FINDINGS
from cohortpool.warehouse import checksum, export_parquet, load_batch
from warehouse_batches import build_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SITES = ("site01", "site02", "site03")
NIGHT = "2025-03-01"
TABLES = ("clinical", "reads", "imaging_manifest")


def _cli(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "cohortpool", *args], capture_output=True, text=True)
    # deid and validate exit 1 when they quarantined something, which the consortium plants on purpose
    assert done.returncode in (0, 1), done.stderr[-3000:]


def _build(root: Path) -> None:
    validate_batch = pytest.importorskip("cohortpool.validate.batch", reason="validation stage not there yet")
    mp = pytest.MonkeyPatch()
    mp.setenv("COHORTPOOL_SECRET", "e406c806a50de203ce9f6b09f34a31b7e917ba4730a3303515cf00c088f149d2")
    try:
        _cli("synth", str(root / "landing"), "--max-patients", "8")
        for site in SITES:
            _cli(
                "deid",
                str(root / "landing" / site / NIGHT),
                str(root / "submissions" / site),
                "--site",
                site,
                "--vault",
                str(root / "vault" / site),
                "--workers",
                "1",
            )
            # in-process: Great Expectations' import is the slow part, paid once for three sites
            validate_batch.validate_submission(root / "submissions" / site, root / "validated" / site)
    finally:
        mp.undo()
    for site in SITES:
        load_batch(root / "warehouse.duckdb", root / "validated" / site)


@pytest.fixture(scope="session")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo consortium, validated and loaded once per session (shared by xdist workers); each
    worker gets its own copy of the warehouse file, since a DuckDB file has one writer at a time."""
    pytest.importorskip("cohortpool.validate.batch", reason="validation stage not there yet")
    root = build_once(tmp_path_factory.getbasetemp(), "warehouse_consortium", _build)
    db = tmp_path_factory.mktemp("consortium_db") / "warehouse.duckdb"
    shutil.copyfile(root / "warehouse.duckdb", db)
    return {"root": root, "db": db}


def _accepted(root: Path) -> dict[str, pd.DataFrame]:
    """Each table's accepted rows of every site, from the submission CSVs and quarantine.csv."""
    out: dict[str, list[pd.DataFrame]] = {t: [] for t in TABLES}
    for site in SITES:
        quarantine = pd.read_csv(
            root / "validated" / site / "quarantine.csv", dtype=str, keep_default_na=False
        )
        for table in TABLES:
            frame = pd.read_csv(
                root / "submissions" / site / f"{table}.csv", dtype=str, keep_default_na=False
            )
            bad = set(quarantine.loc[quarantine["table"] == table, "source_row"])
            out[table].append(frame[~frame["source_row"].isin(bad)])
    return {t: pd.concat(frames, ignore_index=True) for t, frames in out.items()}


def test_nothing_is_lost_between_submission_and_warehouse(consortium: dict[str, Path]) -> None:
    root = consortium["root"]
    with duckdb.connect(str(consortium["db"]), read_only=True) as con:
        for site in SITES:
            quarantine = pd.read_csv(root / "validated" / site / "quarantine.csv", dtype=str)
            for table in TABLES:
                rows_in = len(pd.read_csv(root / "submissions" / site / f"{table}.csv", dtype=str))
                loaded = con.execute(f"SELECT count(*) FROM raw.{table} WHERE site_id = ?", [site]).fetchone()
                quarantined = quarantine.loc[quarantine["table"] == table, "source_row"].nunique()
                assert loaded is not None
                assert loaded[0] + quarantined == rows_in, (site, table)
            stored = con.execute("SELECT count(*) FROM raw.quarantine WHERE site_id = ?", [site]).fetchone()
            assert stored == (len(quarantine),)


def test_lineage_points_back_to_the_submission_rows(consortium: dict[str, Path]) -> None:
    root = consortium["root"]
    with duckdb.connect(str(consortium["db"]), read_only=True) as con:
        for site in SITES:
            for table in TABLES:
                csv = root / "submissions" / site / f"{table}.csv"
                digest = hashlib.sha256(csv.read_bytes()).hexdigest()
                source = pd.read_csv(csv, dtype=str).set_index("source_row")
                loaded = con.execute(
                    f"SELECT patient_id, source_row, source_file, source_sha256 FROM raw.{table} "
                    "WHERE site_id = ?",
                    [site],
                ).fetchall()
                assert loaded, (site, table)
                for patient_id, source_row, source_file, source_sha256 in loaded:
                    assert (source_file, source_sha256) == (f"{table}.csv", digest)
                    assert source.loc[str(source_row), "patient_id"] == patient_id


def test_views_equal_independent_pandas_counts(consortium: dict[str, Path]) -> None:
    acc = _accepted(consortium["root"])
    patients = acc["clinical"][["site_id", "patient_id", "diagnosis"]]
    reads = acc["reads"].merge(patients, on=["site_id", "patient_id"])
    series = acc["imaging_manifest"].merge(patients, on=["site_id", "patient_id"])
    vertebrae = reads.drop_duplicates(["site_id", "patient_id", "level"])
    keys = ["site_id", "diagnosis"]
    expected = (
        patients.groupby(keys).size().rename("patients").to_frame()
        .join(vertebrae.groupby(keys).size().rename("vertebrae"))
        .join(reads.groupby(keys).size().rename("reads"))
        .join(series.groupby(keys).size().rename("series"))
        .fillna(0).astype(int).reset_index().sort_values(keys, ignore_index=True)
    )  # fmt: skip
    with duckdb.connect(str(consortium["db"]), read_only=True) as con:
        got = con.execute("SELECT * FROM analysis.site_counts ORDER BY site_id, diagnosis").df()
        n_vertebrae = con.execute("SELECT site_id, patient_id, n_vertebrae FROM analysis.patients").df()
        findings = con.execute(
            "SELECT modality, finding, count(*) FILTER (present) AS yes, count(*) AS n "
            "FROM analysis.findings_long GROUP BY ALL"
        ).df()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert len(got) >= 6  # three sites, two groups each: the test compared real numbers

    per_patient = vertebrae.groupby(["site_id", "patient_id"]).size()
    for row in n_vertebrae.itertuples():
        assert row.n_vertebrae == per_patient.get((row.site_id, row.patient_id), 0)

    for finding in FINDINGS:
        yes = reads[finding] == "yes"
        for modality in ("XR", "CT", "MR"):
            want = (int(yes[reads["modality"] == modality].sum()), int((reads["modality"] == modality).sum()))
            hit = findings[(findings.modality == modality) & (findings.finding == finding)]
            assert (int(hit.yes.iloc[0]), int(hit.n.iloc[0])) == want, (finding, modality)
        any_yes = reads.assign(y=yes).groupby(["site_id", "patient_id", "level"])["y"].any()
        hit = findings[(findings.modality == "ALL") & (findings.finding == finding)]
        assert (int(hit.yes.iloc[0]), int(hit.n.iloc[0])) == (int(any_yes.sum()), len(any_yes)), finding


def test_reloading_the_consortium_changes_nothing(consortium: dict[str, Path]) -> None:
    db, root = consortium["db"], consortium["root"]
    before = checksum(db)
    results = [load_batch(db, root / "validated" / site) for site in SITES]
    assert [r.status for r in results] == ["unchanged"] * 3
    assert checksum(db) == before


def test_export_holds_the_views_partitioned_by_site(consortium: dict[str, Path], tmp_path: Path) -> None:
    db = consortium["db"]
    out = tmp_path / "export"
    export_parquet(db, out)
    first = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}
    export_parquet(db, out)  # OVERWRITE: a second export into the same folder works and is identical
    second = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}
    assert first == second
    assert {p.parts[1] for p in first} == {f"site_id={s}" for s in SITES}
    with duckdb.connect(str(db), read_only=True) as con:
        for view in ("patients", "vertebra_reads", "vertebrae", "findings_long", "site_counts"):
            want = con.execute(
                f"SELECT site_id, count(*) FROM analysis.{view} GROUP BY 1 ORDER BY 1"
            ).fetchall()
            got = duckdb.sql(
                "SELECT site_id, count(*) FROM read_parquet($p, hive_partitioning = true) "
                "GROUP BY 1 ORDER BY 1",
                params={"p": str(out / view / "*" / "*.parquet")},
            ).fetchall()
            assert got == want, view
