"""export_parquet and checksum: Hive layout, re-export over the same folder, content-only checksum."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from cohortpool.warehouse import (
    ANALYSIS_VIEWS,
    WarehouseMissingError,
    checksum,
    connect,
    export_parquet,
    load_batch,
    migrate,
)
from warehouse_batches import make_tables, write_batch


@pytest.fixture
def two_sites(tmp_path: Path) -> tuple[Path, Path]:
    return (
        write_batch(tmp_path / "a", "site01", "2026-11-01", make_tables("site01", 6, seed=1)),
        write_batch(tmp_path / "b", "site02", "2026-11-01", make_tables("site02", 4, seed=2)),
    )


def test_export_is_hive_partitioned_by_site_and_reexport_overwrites(
    tmp_path: Path, two_sites: tuple[Path, Path]
) -> None:
    db = tmp_path / "w.duckdb"
    for batch in two_sites:
        load_batch(db, batch)
    out = tmp_path / "out"
    (out / "notes.txt").parent.mkdir(parents=True)
    (out / "notes.txt").write_text("an analyst's file beside the export")
    written = export_parquet(db, out)
    assert sorted(written) == sorted(v.split(".")[1] for v in ANALYSIS_VIEWS)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert "patients/site_id=site01/data_0.parquet" in files
    assert "patients/site_id=site02/data_0.parquet" in files
    first = {p: (out / p).read_bytes() for p in files}
    export_parquet(db, out)
    assert {p: (out / p).read_bytes() for p in files} == first
    assert (out / "notes.txt").exists()
    rows = duckdb.sql(
        "SELECT site_id, count(*) FROM read_parquet($p, hive_partitioning = true) GROUP BY 1 ORDER BY 1",
        params={"p": str(out / "patients" / "*" / "*.parquet")},
    ).fetchall()
    assert rows == [("site01", 6), ("site02", 4)]


def test_checksum_depends_on_content_not_on_load_order(tmp_path: Path, two_sites: tuple[Path, Path]) -> None:
    a, b = two_sites
    one, other = tmp_path / "ab.duckdb", tmp_path / "ba.duckdb"
    load_batch(one, a)
    load_batch(one, b)
    load_batch(other, b)
    load_batch(other, a)
    assert checksum(one) == checksum(other)
    assert len(checksum(one)) == 64


def test_checksum_changes_when_a_value_changes(tmp_path: Path) -> None:
    tables = make_tables("site01", 5, seed=1)
    db1, db2 = tmp_path / "1.duckdb", tmp_path / "2.duckdb"
    load_batch(db1, write_batch(tmp_path / "x", "site01", "2026-11-01", tables))
    tables["reads"].loc[0, "height_loss_pct"] += 0.1
    load_batch(db2, write_batch(tmp_path / "y", "site01", "2026-11-01", tables))
    assert checksum(db1) != checksum(db2)


def test_checksum_as_of_before_any_load_is_the_empty_warehouse(
    tmp_path: Path, two_sites: tuple[Path, Path]
) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, two_sites[0])
    empty = tmp_path / "empty.duckdb"
    con = connect(empty)
    migrate(con)
    con.close()
    assert checksum(db, as_of_seq=0) == checksum(empty)


def test_reading_a_missing_warehouse_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(WarehouseMissingError, match="cohortpool db migrate"):
        checksum(tmp_path / "none.duckdb")
