"""A re-delivered night replaces that night whole: what the re-delivery lacks is closed, with history."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from cohortpool.warehouse import checksum, load_batch
from warehouse_batches import make_tables, write_batch

SITE = "site01"
NIGHT1, NIGHT2 = "2026-11-01", "2026-11-02"


def _without(tables: dict[str, pd.DataFrame], patient_id: str) -> dict[str, pd.DataFrame]:
    return {
        name: frame[frame["patient_id"] != patient_id].reset_index(drop=True)
        for name, frame in tables.items()
    }


def _current_rows(db: Path, patient_id: str) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            table: con.execute(
                f"SELECT count(*) FROM raw.{table} WHERE patient_id = ? AND valid_to_seq IS NULL",
                [patient_id],
            ).fetchone()[0]
            for table in ("clinical", "reads", "imaging_manifest")
        }


def test_redelivery_without_a_patient_closes_that_patients_rows(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    tables = make_tables(SITE, 10, seed=1)
    gone = str(tables["clinical"]["patient_id"][0])
    load_batch(db, write_batch(tmp_path / "first", SITE, NIGHT1, tables))
    before = checksum(db)
    again = _without(tables, gone)
    # the re-delivery also lacks one read of another patient
    again["reads"] = again["reads"].iloc[1:].reset_index(drop=True)
    result = load_batch(db, write_batch(tmp_path / "again", SITE, NIGHT1, again))

    assert _current_rows(db, gone) == {"clinical": 0, "reads": 0, "imaging_manifest": 0}
    with duckdb.connect(str(db), read_only=True) as con:
        closed = con.execute(
            "SELECT count(*), min(valid_to_seq), max(valid_to_seq), any_value(superseded_by_batch) "
            "FROM raw.reads WHERE patient_id = ?",
            [gone],
        ).fetchone()
        assert closed == (6, 2, 2, result.batch_id)  # 2 levels x 3 modalities
        assert con.execute("SELECT count(*) FROM analysis.patients").fetchone() == (9,)
        assert con.execute(
            "SELECT count(*) FROM analysis.patients WHERE patient_id = ?", [gone]
        ).fetchone() == (0,)
        # 9 patients x 2 levels x 3 modalities, less the read the re-delivery lacks
        assert con.execute("SELECT count(*) FROM analysis.vertebra_reads").fetchone() == (9 * 6 - 1,)
        assert con.execute("SELECT count(*) FROM analysis.site_counts_asof(NULL)").fetchone()[0] > 0
        # history keeps the first delivery: as of load 1 the patient is there
        assert con.execute(
            "SELECT count(*) FROM analysis.patients_asof(1) WHERE patient_id = ?", [gone]
        ).fetchone() == (1,)
    assert checksum(db, as_of_seq=1) == before
    # the night as it now stands, whatever was delivered before
    only = tmp_path / "only.duckdb"
    load_batch(only, tmp_path / "again")
    assert checksum(db) == checksum(only)


def test_older_night_redelivered_after_a_newer_one_closes_only_its_own_rows(tmp_path: Path) -> None:
    tables = make_tables(SITE, 10, seed=1)
    ids = list(tables["clinical"]["patient_id"])
    corrected = {name: frame[frame["patient_id"].isin(ids[:3])].copy() for name, frame in tables.items()}
    corrected["clinical"]["bmi"] = 30.0
    night1 = write_batch(tmp_path / "n1", SITE, NIGHT1, tables)
    night2 = write_batch(tmp_path / "n2", SITE, NIGHT2, corrected)
    # night 1 again, without one of the corrected patients and without one the newer night lacks
    night1_again = write_batch(tmp_path / "n1b", SITE, NIGHT1, _without(_without(tables, ids[0]), ids[5]))

    db = tmp_path / "w.duckdb"
    for batch in (night1, night2, night1_again):
        load_batch(db, batch)
    # the newer night is never overwritten: its three patients stay current with their corrections
    assert _current_rows(db, ids[0]) == {"clinical": 1, "reads": 6, "imaging_manifest": 6}
    assert _current_rows(db, ids[5]) == {"clinical": 0, "reads": 0, "imaging_manifest": 0}
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(
            "SELECT count(*) FILTER (bmi = 30.0), count(*) FROM analysis.patients"
        ).fetchone() == (
            3,
            9,
        )
    # the same as the final nights loaded in order
    in_order = tmp_path / "in_order.duckdb"
    for batch in (night1_again, night2):
        load_batch(in_order, batch)
    assert checksum(db) == checksum(in_order)


def test_a_later_night_still_replaces_only_the_patients_it_carries(tmp_path: Path) -> None:
    """Night 2 carrying three patients leaves night 1's other seven current (not a re-delivery)."""
    db = tmp_path / "w.duckdb"
    tables = make_tables(SITE, 10, seed=1)
    ids = list(tables["clinical"]["patient_id"])
    load_batch(db, write_batch(tmp_path / "n1", SITE, NIGHT1, tables))
    some = {name: frame[frame["patient_id"].isin(ids[:3])].copy() for name, frame in tables.items()}
    result = load_batch(db, write_batch(tmp_path / "n2", SITE, NIGHT2, some))
    assert result.superseded == 3 + 18 + 18
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM analysis.patients").fetchone() == (10,)


def _bmi(db: Path, patient_id: str) -> list[tuple[float, int]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT p.bmi, (SELECT count(*) FROM analysis.vertebra_reads r "
            "WHERE r.patient_id = p.patient_id) FROM analysis.patients AS p WHERE p.patient_id = ?",
            [patient_id],
        ).fetchall()


def test_redelivery_no_longer_carrying_a_patient_gives_back_the_earlier_night(tmp_path: Path) -> None:
    """Night 2 corrected three patients; night 2 re-delivered corrects only two: the third is night 1's again,
    as if the re-delivery had been the only night 2 (and again, and again: never twice)."""
    tables = make_tables(SITE, 10, seed=1)
    ids = list(tables["clinical"]["patient_id"])
    original_bmi = float(tables["clinical"]["bmi"][0])

    def corrected(patients: list[str], bmi: float = 30.0) -> dict[str, pd.DataFrame]:
        fixed = {name: frame[frame["patient_id"].isin(patients)].copy() for name, frame in tables.items()}
        fixed["clinical"]["bmi"] = bmi
        return fixed

    night1 = write_batch(tmp_path / "n1", SITE, NIGHT1, tables)
    night2 = write_batch(tmp_path / "n2", SITE, NIGHT2, corrected(ids[:3]))
    night2_again = write_batch(tmp_path / "n2b", SITE, NIGHT2, corrected(ids[1:3]))
    db = tmp_path / "w.duckdb"
    for batch in (night1, night2):
        load_batch(db, batch)
    assert _bmi(db, ids[0]) == [(30.0, 6)]
    result = load_batch(db, night2_again)
    assert result.reinstated_rows == 1 + 6 + 6
    assert _bmi(db, ids[0]) == [(original_bmi, 6)]
    in_order = tmp_path / "in_order.duckdb"
    for batch in (night1, night2_again):
        load_batch(in_order, batch)
    assert checksum(db) == checksum(in_order)
    # history: right after load 2 the patient had the corrected value
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(
            "SELECT bmi FROM analysis.patients_asof(2) WHERE patient_id = ?", [ids[0]]
        ).fetchall() == [(30.0,)]
        recorded = con.execute("SELECT reinstated_rows FROM analysis.batches WHERE load_seq = 3").fetchone()
    assert recorded == (13,)

    # carried again (new content: the same content again would be the batch already loaded), then
    # dropped again: one current version each time, never two
    load_batch(db, write_batch(tmp_path / "n2c", SITE, NIGHT2, corrected(ids[:3], bmi=31.0)))
    assert _bmi(db, ids[0]) == [(31.0, 6)]
    load_batch(db, write_batch(tmp_path / "n2d", SITE, NIGHT2, corrected(ids[1:2])))
    assert _bmi(db, ids[0]) == [(original_bmi, 6)]
    assert _bmi(db, ids[2]) == [(float(tables["clinical"]["bmi"][2]), 6)]
    final = tmp_path / "final.duckdb"
    for batch in (night1, tmp_path / "n2d"):
        load_batch(final, batch)
    assert checksum(db) == checksum(final)
