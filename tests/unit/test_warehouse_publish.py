"""publish: a complete read-only copy, swapped in atomically; open_reader always sees the current one."""

from __future__ import annotations

import errno
import json
import shutil
import stat
from pathlib import Path

import duckdb
import pytest

from cohortpool.warehouse import (
    PublishError,
    WarehouseMissingError,
    checksum,
    load_batch,
    open_reader,
    publish,
    published_path,
)
from cohortpool.warehouse import publication as publish_module
from warehouse_batches import make_tables, write_batch

COUNT_SITES = "SELECT count(DISTINCT site_id) FROM analysis.patients"


def _night(root: Path, site: str, seed: int) -> Path:
    return write_batch(root / site, site, "2026-11-01", make_tables(site, 4, seed=seed))


def test_published_copy_holds_the_same_content_views_and_comments(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, _night(tmp_path, "site01", 1))
    done = publish(db)
    assert done.path == published_path(db) == tmp_path / "published" / "w.duckdb"
    assert done.load_seq == 1
    assert checksum(done.path) == checksum(db)
    assert not stat.S_IMODE(done.path.stat().st_mode) & 0o222, "the published copy is writable"
    assert done.dictionary == tmp_path / "published" / "dictionary.html"
    assert "analysis.patients" in done.dictionary.read_text(encoding="utf-8")
    with duckdb.connect(str(done.path), read_only=True) as con:
        assert con.execute(COUNT_SITES).fetchone() == (1,)
        comment = con.execute(
            "SELECT comment FROM duckdb_views() WHERE schema_name = 'analysis' AND view_name = 'patients'"
        ).fetchone()
        assert comment is not None and "current patient" in comment[0]
    assert sorted(p.name for p in done.path.parent.iterdir()) == ["dictionary.html", "w.duckdb"]


def test_a_held_reader_keeps_its_snapshot_and_a_new_open_sees_the_next_night(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, _night(tmp_path, "site01", 1))
    target = publish(db).path
    held = duckdb.connect(str(target), read_only=True)  # what an analyst's notebook does
    try:
        load_batch(db, _night(tmp_path, "site02", 2))
        assert publish(db).load_seq == 2
        assert held.execute(COUNT_SITES).fetchone() == (1,)
        # in the same process too: duckdb.connect(path) would hand back the cached old instance
        fresh = open_reader(target)
        assert fresh.execute(COUNT_SITES).fetchone() == (2,)
        fresh.close()
    finally:
        held.close()


def test_a_failed_copy_leaves_the_previous_publication_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, _night(tmp_path, "site01", 1))
    target = publish(db).path
    before = target.read_bytes()
    load_batch(db, _night(tmp_path, "site02", 2))

    def full_disk(source: Path, destination: Path) -> None:
        Path(destination).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(publish_module.shutil, "copyfile", full_disk)
    with pytest.raises(PublishError, match=r"No space left on device.*MiB free in .*previous published copy"):
        publish(db)
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["dictionary.html", "w.duckdb"]


def test_a_copy_that_does_not_read_back_is_never_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, _night(tmp_path, "site01", 1))
    target = publish(db).path
    before = target.read_bytes()

    def torn(source: Path, destination: Path) -> None:
        Path(destination).write_bytes(Path(source).read_bytes()[: 64 * 1024])

    monkeypatch.setattr(publish_module.shutil, "copyfile", torn)
    with pytest.raises(PublishError, match="nothing published"):
        publish(db)
    assert target.read_bytes() == before


def test_publishing_nothing_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(WarehouseMissingError, match=r"none\.duckdb"):
        publish(tmp_path / "none.duckdb")


def test_open_reader_never_writes_and_refuses_a_missing_file(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, _night(tmp_path, "site01", 1))
    shutil.copy(db, tmp_path / "copy.duckdb")
    con = open_reader(tmp_path / "copy.duckdb")
    with pytest.raises(duckdb.Error, match="read-only"):
        con.execute("DELETE FROM raw.clinical")
    con.close()
    with pytest.raises(WarehouseMissingError, match=r"nowhere\.duckdb"):
        open_reader(tmp_path / "nowhere.duckdb")


def test_load_records_the_sites_de_identification_counts(tmp_path: Path) -> None:
    batch = _night(tmp_path, "site01", 1)
    submission = tmp_path / "submission"
    submission.mkdir()
    summary = json.loads((batch / "summary.json").read_text())
    document = {
        "site_id": "site01",
        "night": "2026-11-01",
        "counts": {"input_files": 40, "deidentified": 36, "quarantined": 3, "duplicate": 1, "series": 24},
        "files": {"clinical.csv": summary["tables"]["clinical"]["source_sha256"]},
    }
    (submission / "submission.json").write_text(json.dumps(document))
    db = tmp_path / "w.duckdb"
    load_batch(db, batch, submission_dir=submission)
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT deid_input_files, deid_deidentified, deid_quarantined, deid_duplicates FROM raw.batches"
        ).fetchone()
    assert row == (40, 36, 3, 1)


def test_a_submission_of_another_night_or_content_is_refused(tmp_path: Path) -> None:
    from cohortpool.warehouse import BatchError

    batch = _night(tmp_path, "site01", 1)
    submission = tmp_path / "submission"
    submission.mkdir()
    other_night = {"site_id": "site01", "night": "2026-11-02", "counts": {}}
    (submission / "submission.json").write_text(json.dumps(other_night))
    with pytest.raises(BatchError, match="submission of site01 2026-11-02"):
        load_batch(tmp_path / "w.duckdb", batch, submission_dir=submission)
    other_file = {"site_id": "site01", "night": "2026-11-01", "files": {"reads.csv": "0" * 64}}
    (submission / "submission.json").write_text(json.dumps(other_file))
    with pytest.raises(BatchError, match=r"lists reads\.csv with sha256 000000000000"):
        load_batch(tmp_path / "w.duckdb", batch, submission_dir=submission)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.batches").fetchone() == (0,)
