"""Withdrawal of consent at the hub: the patient leaves every view and report, and history keeps nothing of
them but the pseudonym, the site, the night and the fact (raw.withdrawals)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cohortpool.pipeline.report import fetch
from cohortpool.warehouse import BatchError, checksum, load_batch
from warehouse_batches import make_tables, warehouse_rows, write_batch

SITE = "site01"
NIGHT0, NIGHT1, NIGHT2, NIGHT3 = "2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"
RAW = ("clinical", "reads", "imaging_manifest")


def _only(tables: dict[str, pd.DataFrame], ids: list[str]) -> dict[str, pd.DataFrame]:
    return {n: f[f["patient_id"].isin(ids)].reset_index(drop=True).copy() for n, f in tables.items()}


def _without(tables: dict[str, pd.DataFrame], patient_id: str) -> dict[str, pd.DataFrame]:
    return {n: f[f["patient_id"] != patient_id].reset_index(drop=True) for n, f in tables.items()}


#: a value of the withdrawing patient that no compression makes unrecognisable in the file's bytes
TRACE = "trace-5f0c9d2e8a7b41e6b3c2d1f0e9a8b7c6d5e4f3a2b1c0d9e8"


def _issue(patient_id: str) -> dict[str, object]:
    return {
        "table": "clinical",
        "source_row": 11,
        "key": f"{SITE}|{patient_id}",
        "expectation": "expect_column_values_to_be_between",
        "severity": "critical",
        "reason": "bmi outside 10-60",
        "value": TRACE,
    }


@pytest.fixture
def cohort() -> dict[str, pd.DataFrame]:
    return make_tables(SITE, 10, seed=1)


@pytest.fixture
def gone(cohort: dict[str, pd.DataFrame]) -> str:
    return str(cohort["clinical"]["patient_id"][0])


@pytest.fixture
def nights(tmp_path: Path, cohort: dict[str, pd.DataFrame], gone: str) -> dict[str, Path]:
    """Night 1: ten patients (a quarantine line about the one who will withdraw); night 2: that patient
    and two others corrected (so the patient has history); night 3: the patient withdraws."""
    ids = list(cohort["clinical"]["patient_id"])
    corrected = _only(cohort, ids[:3])
    corrected["clinical"]["bmi"] = 30.0
    # night 3: a new patient arrives, and the withdrawal
    newcomer = make_tables(SITE, 1, seed=5, patient_offset=50)
    return {
        "night1": write_batch(tmp_path / "n1", SITE, NIGHT1, cohort, quarantine=[_issue(gone)]),
        "night2": write_batch(tmp_path / "n2", SITE, NIGHT2, corrected),
        "night3": write_batch(tmp_path / "n3", SITE, NIGHT3, newcomer, withdrawn=[gone]),
    }


def _load(db: Path, *batches: Path) -> None:
    for batch in batches:
        load_batch(db, batch)


def _cells_holding(db: Path, text: str) -> dict[str, int]:
    """Per warehouse table, how many rows hold ``text`` in any column."""
    found = {}
    for table, rows in warehouse_rows(db).items():
        n = sum(any(text in str(cell) for cell in row) for row in rows)
        if n:
            found[table] = n
    return found


def test_withdrawal_erases_the_patient_from_every_table_history_included(
    tmp_path: Path, nights: dict[str, Path], gone: str
) -> None:
    db = tmp_path / "w.duckdb"
    _load(db, nights["night1"], nights["night2"])
    assert set(_cells_holding(db, gone)) >= {
        "raw.clinical",
        "raw.reads",
        "raw.imaging_manifest",
        "raw.quarantine",
    }
    result = load_batch(db, nights["night3"])

    assert (result.withdrawn_patients, result.erased_rows) == (1, 2 * (1 + 6 + 6) + 1)
    # all that remains of the patient: pseudonym, site, night and the fact
    assert _cells_holding(db, gone) == {"raw.withdrawals": 1}
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(
            "SELECT site_id, patient_id, CAST(night AS VARCHAR), batch_id FROM raw.withdrawals"
        ).fetchall() == [(SITE, gone, NIGHT3, result.batch_id)]
        for seq in (1, 2, 3):
            assert con.execute(
                "SELECT count(*) FROM analysis.patients_asof(?) WHERE patient_id = ?", [seq, gone]
            ).fetchone() == (0,)
        # nothing lost in the accounting: accepted = rows held + rows erased for withdrawal, per batch
        unaccounted = con.execute(
            """
            WITH held AS (
                SELECT batch_id, 'clinical' AS table_name, count(*) AS n FROM raw.clinical GROUP BY ALL
                UNION ALL SELECT batch_id, 'reads', count(*) FROM raw.reads GROUP BY ALL
                UNION ALL SELECT batch_id, 'imaging_manifest', count(*) FROM raw.imaging_manifest GROUP BY ALL
            )
            SELECT s.batch_id, s.table_name, s.accepted, coalesce(h.n, 0), s.withdrawn_rows
            FROM raw.validation_summary AS s LEFT JOIN held AS h USING (batch_id, table_name)
            WHERE s.accepted <> coalesce(h.n, 0) + s.withdrawn_rows
            """
        ).fetchall()
        assert unaccounted == []
        assert con.execute("SELECT sum(withdrawn_rows) FROM raw.validation_summary").fetchone() == (26,)
        assert con.execute(
            "SELECT withdrawn_patients, erased_rows FROM analysis.batches WHERE load_seq = 3"
        ).fetchone() == (1, 27)


def _bytes_hold(db: Path, text: str) -> bool:
    files = [db, db.with_name(db.name + ".wal")]
    return any(text.encode() in f.read_bytes() for f in files if f.exists())


def test_erased_values_leave_no_bytes_in_the_warehouse_file(tmp_path: Path, nights: dict[str, Path]) -> None:
    db = tmp_path / "w.duckdb"
    _load(db, nights["night1"], nights["night2"])
    assert _bytes_hold(db, TRACE)  # the test can see the value while it is there
    load_batch(db, nights["night3"])
    assert not _bytes_hold(db, TRACE)
    with duckdb.connect(str(db), read_only=True) as con:
        # the rewritten file is the whole warehouse: descriptions, checks and history intact
        assert con.execute("SELECT count(*) FROM analysis.batches").fetchone() == (3,)
        assert (
            con.execute(
                "SELECT comment FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = 'withdrawals'"
            )
            .fetchone()[0]
            .startswith("Patients who revoked consent")
        )
        assert con.execute("SELECT count(*) FROM analysis.patients_asof(2)").fetchone() == (9,)
    assert not list(tmp_path.glob(".*compact*"))
    # and it takes the next load
    more = write_batch(tmp_path / "n4", SITE, "2026-11-04", make_tables(SITE, 2, seed=9, patient_offset=70))
    assert load_batch(db, more).load_seq == 4


def test_views_and_the_report_no_longer_count_the_patient(
    tmp_path: Path, nights: dict[str, Path], gone: str
) -> None:
    db = tmp_path / "w.duckdb"
    _load(db, nights["night1"], nights["night2"])
    frames, _ = fetch(db, ["patients", "vertebra_reads", "vertebrae", "findings_long"])
    assert gone in set(frames["patients"]["patient_id"])
    n_before = len(frames["patients"])
    load_batch(db, nights["night3"])
    frames, _ = fetch(db, ["patients", "vertebra_reads", "vertebrae", "findings_long"])
    for view, frame in frames.items():
        assert gone not in set(frame["patient_id"]), view
    assert len(frames["patients"]) == n_before - 1 + 1  # one withdrew, one newcomer
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT sum(patients) FROM analysis.site_counts").fetchone() == (10,)


def test_a_late_delivery_still_carrying_the_patient_does_not_bring_them_back(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], nights: dict[str, Path], gone: str
) -> None:
    db = tmp_path / "w.duckdb"
    _load(db, nights["night1"], nights["night2"], nights["night3"])
    # an older night arriving late, and a re-delivery of night 1, both still carrying the patient
    late = write_batch(tmp_path / "n0", SITE, NIGHT0, cohort)
    changed = {name: frame.copy() for name, frame in cohort.items()}
    changed["clinical"].loc[9, "bmi"] = 25.0
    again = write_batch(tmp_path / "n1b", SITE, NIGHT1, changed, quarantine=[_issue(gone)])
    for batch in (late, again):
        result = load_batch(db, batch)
        assert result.status == "loaded"
        assert result.erased_rows == 1 + 6 + 6 + (1 if batch == again else 0)
        assert _cells_holding(db, gone) == {"raw.withdrawals": 1}
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FROM analysis.patients WHERE patient_id = ?", [gone]
        ).fetchone() == (0,)
        # the late night recorded the withdrawal it did not know about: the earliest night stays recorded
        assert con.execute("SELECT CAST(night AS VARCHAR) FROM raw.withdrawals").fetchall() == [(NIGHT3,)]


def test_a_withdrawal_listed_again_by_an_earlier_night_records_the_earliest(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], nights: dict[str, Path], gone: str
) -> None:
    db = tmp_path / "w.duckdb"
    _load(db, nights["night1"], nights["night3"])
    earlier = write_batch(tmp_path / "n2w", SITE, NIGHT2, _without(cohort, gone), withdrawn=[gone])
    result = load_batch(db, earlier)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT CAST(night AS VARCHAR), batch_id FROM raw.withdrawals").fetchall() == [
            (NIGHT2, result.batch_id)
        ]


def test_erasure_equals_never_having_loaded_the_patient_and_is_deterministic(
    tmp_path: Path, cohort: dict[str, pd.DataFrame], nights: dict[str, Path], gone: str
) -> None:
    order = (nights["night1"], nights["night2"], nights["night3"])
    first, second, shuffled = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "c.duckdb"
    _load(first, *order)
    _load(second, *order)
    _load(shuffled, nights["night3"], nights["night1"], nights["night2"])
    assert checksum(first) == checksum(second) == checksum(shuffled)
    for seq in (1, 2, 3):
        assert checksum(first, as_of_seq=seq) == checksum(second, as_of_seq=seq)

    # the same nights as if the patient had never been sent: current state and history agree
    never = tmp_path / "never.duckdb"
    ids = list(cohort["clinical"]["patient_id"])
    corrected = _only(cohort, ids[1:3])
    corrected["clinical"]["bmi"] = 30.0
    _load(
        never,
        write_batch(tmp_path / "x1", SITE, NIGHT1, _without(cohort, gone)),
        write_batch(tmp_path / "x2", SITE, NIGHT2, corrected),
        write_batch(tmp_path / "x3", SITE, NIGHT3, make_tables(SITE, 1, seed=5, patient_offset=50)),
    )
    # (batch ids differ: the batches' content does; everything else is the same, as of every load)
    for seq in (1, 2, 3):
        assert _analysis_sets(first, seq) == _analysis_sets(never, seq)


def _analysis_sets(db: Path, seq: int) -> dict[str, list[tuple[object, ...]]]:
    """Every analysis set as of load ``seq``, without batch ids, sorted."""
    sets = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for view in ("patients", "vertebra_reads", "vertebrae", "site_counts"):
            frame = con.execute(f"SELECT * FROM analysis.{view}_asof(?)", [seq]).df()
            frame = frame.drop(columns=[c for c in ("batch_id",) if c in frame])
            sets[view] = sorted(map(tuple, frame.astype(str).to_numpy().tolist()))
    return sets


def test_a_withdrawal_of_another_sites_patient_is_refused(tmp_path: Path, nights: dict[str, Path]) -> None:
    batch = nights["night3"]
    (batch / "withdrawn.csv").write_text("site_id,patient_id\nsite02,P0000000000000000\n")
    with pytest.raises(BatchError, match="withdraws patients of other site"):
        load_batch(tmp_path / "w.duckdb", batch)
