"""load_batch: lineage on every row, idempotent reloads, supersede with history, all-or-nothing."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cohortpool.warehouse import BatchConflictError, BatchError, LoadError, checksum, load_batch
from warehouse_batches import make_tables, warehouse_rows, write_batch

RAW_TABLES = ("clinical", "reads", "imaging_manifest")
QUARANTINED = {
    "table": "clinical",
    "source_row": 11,
    "key": "PFFFF",
    "expectation": "expect_column_values_to_be_between",
    "severity": "critical",
    "reason": "bmi 99.0 outside 10-60",
    "value": "99.0",
}


@pytest.fixture
def night1(tmp_path: Path) -> Path:
    tables = make_tables("site01", 10, seed=1)
    return write_batch(tmp_path / "night1", "site01", "2026-11-01", tables, quarantine=[QUARANTINED])


def test_every_row_carries_lineage_matching_its_source(tmp_path: Path, night1: Path) -> None:
    db = tmp_path / "w.duckdb"
    result = load_batch(db, night1)
    assert result.status == "loaded"
    assert result.rows == {"clinical": 10, "reads": 60, "imaging_manifest": 60}
    with duckdb.connect(str(db), read_only=True) as con:
        for table in RAW_TABLES:
            nulls = con.execute(
                f"SELECT count(*) FILTER (batch_id IS NULL OR source_file IS NULL OR source_sha256 IS NULL "
                f"OR source_row IS NULL OR loaded_at IS NULL OR site_id IS NULL) FROM raw.{table}"
            ).fetchone()
            assert nulls == (0,)
            loaded = con.execute(
                f"SELECT patient_id, source_row, source_file, source_sha256, batch_id FROM raw.{table} "
                "ORDER BY source_row"
            ).df()
            source = pd.read_parquet(night1 / "accepted" / f"{table}.parquet")
            expected = source[["patient_id", "source_row", "source_file", "source_sha256", "batch_id"]]
            pd.testing.assert_frame_equal(loaded, expected, check_dtype=False)


def test_same_batch_twice_changes_nothing(tmp_path: Path, night1: Path) -> None:
    db = tmp_path / "w.duckdb"
    first = load_batch(db, night1)
    before = warehouse_rows(db)
    again = load_batch(db, night1)
    assert again.status == "unchanged"
    assert (again.batch_id, again.load_seq, again.rows) == (first.batch_id, first.load_seq, first.rows)
    assert warehouse_rows(db) == before


def test_same_batch_id_with_other_content_is_refused(tmp_path: Path, night1: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, night1)
    before = warehouse_rows(db)
    # re-validated differently: one more warning, same batch_id
    (night1 / "warnings.csv").write_text(
        "table,source_row,key,expectation,severity,reason,value\nreads,3,k,e,warning,odd,x\n"
    )
    with pytest.raises(BatchConflictError, match="already loaded from different content"):
        load_batch(db, night1)
    assert warehouse_rows(db) == before


def test_quarantine_summary_and_batch_are_recorded(tmp_path: Path, night1: Path) -> None:
    db = tmp_path / "w.duckdb"
    result = load_batch(db, night1)
    with duckdb.connect(str(db), read_only=True) as con:
        quarantine = con.execute(
            "SELECT table_name, source_row, reason, value, file_row, batch_id FROM raw.quarantine"
        ).fetchall()
        summary = con.execute(
            "SELECT table_name, rows_in, accepted, quarantined FROM raw.validation_summary ORDER BY 1"
        ).fetchall()
        batch = con.execute(
            "SELECT site_id, night::VARCHAR, validation_outcome, quarantined_rows, content_sha256 "
            "FROM raw.batches"
        ).fetchall()
        files = con.execute("SELECT file FROM raw.batch_files ORDER BY 1").fetchall()
    assert quarantine == [("clinical", 11, "bmi 99.0 outside 10-60", "99.0", 1, result.batch_id)]
    assert summary == [("clinical", 11, 10, 1), ("imaging_manifest", 60, 60, 0), ("reads", 60, 60, 0)]
    assert batch == [("site01", "2026-11-01", "quarantined", 1, result.content_sha256)]
    assert [f[0] for f in files] == [
        "accepted/clinical.parquet",
        "accepted/imaging_manifest.parquet",
        "accepted/reads.parquet",
        "quarantine.csv",
        "summary.json",
        "warnings.csv",
    ]


def test_resubmission_supersedes_and_history_reproduces_the_old_state(tmp_path: Path, night1: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, night1)
    state_after_first = checksum(db)
    # the site corrects three patients: new BMI, and one of them loses a read
    result = load_batch(db, _correction(tmp_path, "2026-11-02"))
    assert result.superseded == 3 + 18 + 18
    with duckdb.connect(str(db), read_only=True) as con:
        now = con.execute("SELECT count(*), count(*) FILTER (bmi = 30.0) FROM analysis.patients").fetchone()
        reads_now = con.execute("SELECT count(*) FROM analysis.vertebra_reads").fetchone()
        kept = con.execute(
            "SELECT count(*) FROM raw.clinical WHERE valid_to_seq = 2 AND superseded_by_batch = ?",
            [result.batch_id],
        ).fetchone()
        then = con.execute(
            "SELECT count(*), count(*) FILTER (bmi = 30.0) FROM analysis.patients_asof(1)"
        ).fetchone()
        reads_then = con.execute("SELECT count(*) FROM analysis.vertebra_reads_asof(1)").fetchone()
    assert now == (10, 3)
    assert reads_now == (59,)
    assert kept == (3,)
    assert then == (10, 0)
    assert reads_then == (60,)
    assert checksum(db, as_of_seq=1) == state_after_first
    assert checksum(db) != state_after_first


def _correction(tmp_path: Path, night: str) -> Path:
    """Three of night1's patients corrected: new BMI, and the first of their reads withdrawn."""
    tables = make_tables("site01", 10, seed=1)
    fixed = {
        name: frame[frame["patient_id"].isin(tables["clinical"]["patient_id"][:3])].copy()
        for name, frame in tables.items()
    }
    fixed["clinical"]["bmi"] = 30.0
    fixed["reads"] = fixed["reads"].iloc[1:]
    return write_batch(tmp_path / f"fix_{night}", "site01", night, fixed)


def test_older_night_arriving_after_a_newer_one_never_overwrites_it(tmp_path: Path, night1: Path) -> None:
    in_order, late = tmp_path / "in_order.duckdb", tmp_path / "late.duckdb"
    newer = _correction(tmp_path, "2026-11-02")
    load_batch(in_order, night1)
    load_batch(in_order, newer)
    newer_id = load_batch(late, newer).batch_id
    result = load_batch(late, night1)  # night 1 resent after night 2 was loaded
    assert result.status == "loaded"
    assert result.superseded == 0
    # the three corrected patients' night-1 rows are kept for the record but never current
    assert result.late_rows == 3 + 18 + 18
    assert checksum(late) == checksum(in_order)
    with duckdb.connect(str(late), read_only=True) as con:
        assert con.execute("SELECT count(*) FILTER (bmi = 30.0) FROM analysis.patients").fetchone() == (3,)
        never_current = con.execute(
            "SELECT count(*) FROM raw.clinical "
            "WHERE valid_from_seq = valid_to_seq AND superseded_by_batch = ?",
            [newer_id],
        ).fetchone()
        recorded = con.execute("SELECT late_rows FROM analysis.batches WHERE load_seq = 2").fetchone()
    assert never_current == (3,)
    assert recorded == (39,)


def test_same_night_delivered_again_with_corrections_replaces_it(tmp_path: Path, night1: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, night1)
    # the whole night again, three patients corrected (a re-delivery replaces the night whole)
    tables = make_tables("site01", 10, seed=1)
    corrected = tables["clinical"]["patient_id"][:3]
    tables["clinical"].loc[tables["clinical"]["patient_id"].isin(corrected), "bmi"] = 30.0
    again = write_batch(tmp_path / "again", "site01", "2026-11-01", tables)
    result = load_batch(db, again)
    assert (result.superseded, result.late_rows) == (10 + 60 + 60, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FILTER (bmi = 30.0) FROM analysis.patients").fetchone() == (3,)
        assert con.execute("SELECT count(*) FROM analysis.patients").fetchone() == (10,)


def test_a_skipped_night_is_simply_absent_and_the_next_one_loads(tmp_path: Path, night1: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, night1)
    result = load_batch(db, _correction(tmp_path, "2026-11-03"))  # 2026-11-02 never came
    assert (result.status, result.superseded, result.late_rows) == ("loaded", 39, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        nights = con.execute(
            "SELECT CAST(night AS VARCHAR) FROM analysis.batches ORDER BY load_seq"
        ).fetchall()
    assert nights == [("2026-11-01",), ("2026-11-03",)]


def test_other_sites_rows_are_never_superseded(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    # two sites whose pseudonyms happen to coincide: patient ids are only unique within a site
    tables = make_tables("site01", 5, seed=1)
    other = {name: frame.assign(site_id="site02") for name, frame in tables.items()}
    load_batch(db, write_batch(tmp_path / "a", "site01", "2026-11-01", tables))
    result = load_batch(db, write_batch(tmp_path / "b", "site02", "2026-11-01", other))
    assert result.superseded == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM analysis.patients").fetchone() == (10,)


def test_bad_value_names_file_row_and_column_and_loads_nothing(tmp_path: Path, night1: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, night1)
    before = warehouse_rows(db)
    tables = make_tables("site01", 4, seed=2, patient_offset=100)
    tables["reads"].loc[5, "level"] = "T13"
    bad = write_batch(tmp_path / "bad", "site01", "2026-11-03", tables)
    with pytest.raises(LoadError) as excinfo:
        load_batch(db, bad)
    message = str(excinfo.value)
    assert "accepted/reads.parquet" in message
    assert "source_row 6 column level is not one of T1" in message
    assert "nothing was loaded" in message
    assert warehouse_rows(db) == before


def test_failed_check_rolls_the_whole_batch_back(tmp_path: Path, night1: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, night1)
    before = warehouse_rows(db)
    tables = make_tables("site01", 4, seed=2, patient_offset=100)
    tables["clinical"] = pd.concat([tables["clinical"], tables["clinical"].iloc[:1]], ignore_index=True)
    dup = write_batch(tmp_path / "dup", "site01", "2026-11-03", tables)
    with pytest.raises(LoadError, match="assert_one_current_patient_row"):
        load_batch(db, dup)
    assert warehouse_rows(db) == before


def test_summary_count_mismatch_is_caught(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1))
    summary = json.loads((batch / "summary.json").read_text())
    summary["tables"]["reads"]["accepted"] += 1
    (batch / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(LoadError, match="assert_rows_match_summary"):
        load_batch(db, batch)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.reads").fetchone() == (0,)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: (b / "summary.json").unlink(), "no summary.json"),
        (lambda b: (b / "accepted" / "reads.parquet").unlink(), "missing accepted/reads.parquet"),
        (lambda b: (b / "quarantine.csv").unlink(), "missing quarantine.csv"),
        (lambda b: (b / "summary.json").write_text("{not json"), "invalid JSON at line 1"),
    ],
)
def test_malformed_batch_folder_is_refused_before_loading(
    tmp_path: Path, damage: object, message: str
) -> None:
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 2, seed=1))
    damage(batch)  # type: ignore[operator]
    with pytest.raises(BatchError, match=message):
        load_batch(tmp_path / "w.duckdb", batch)


def test_unknown_column_is_refused_naming_file_and_column(tmp_path: Path) -> None:
    tables = make_tables("site01", 2, seed=1)
    tables["clinical"]["mrn"] = "123"  # PHI that should never have left the site
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", tables)
    with pytest.raises(BatchError, match=r"clinical\.parquet: columns differ .* unknown \['mrn'\]"):
        load_batch(tmp_path / "w.duckdb", batch)


def test_batch_id_must_follow_the_contract(tmp_path: Path) -> None:
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 2, seed=1))
    summary = json.loads((batch / "summary.json").read_text())
    summary["batch_id"] = "nightly-42"
    (batch / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(BatchError, match="is not <site_id>_<night>_<12 hex>"):
        load_batch(tmp_path / "w.duckdb", batch)


def test_meaningless_lineage_is_refused(tmp_path: Path) -> None:
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1))
    reads = pd.read_parquet(batch / "accepted" / "reads.parquet")
    reads["source_sha256"] = "not-a-checksum"
    reads.to_parquet(batch / "accepted" / "reads.parquet", index=False)
    with pytest.raises(LoadError, match=r"assert_lineage_complete.*'reads', 'reads\.csv', 'not-a-checksum'"):
        load_batch(tmp_path / "w.duckdb", batch)
