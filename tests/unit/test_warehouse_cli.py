"""`cohortpool load`, `db migrate|status|checksum` and `export`: exit codes and what they print."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from warehouse_batches import make_tables, write_batch

runner = CliRunner()
QUARANTINED = {
    "table": "reads",
    "source_row": 61,
    "key": "k",
    "expectation": "e",
    "severity": "error",
    "reason": "level must be T1..L5",
    "value": "",
}


def test_clean_batch_loads_with_exit_0_and_again_unchanged(tmp_path: Path) -> None:
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1))
    db = tmp_path / "w.duckdb"
    first = runner.invoke(app, ["load", str(batch), "--db", str(db)])
    assert first.exit_code == 0, first.output
    assert re.search(r"loaded site01_2026-11-01_\w{12} \(load 1\): clinical 3, reads 18", first.output)
    again = runner.invoke(app, ["load", str(batch), "--db", str(db)])
    assert again.exit_code == 0
    assert "unchanged" in again.output


def test_batch_with_quarantined_rows_exits_1(tmp_path: Path) -> None:
    tables = make_tables("site01", 3, seed=1)
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", tables, quarantine=[QUARANTINED])
    result = runner.invoke(app, ["load", str(batch), "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 1
    assert "quarantined 1" in result.output


def test_not_a_batch_exits_2_naming_the_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["load", str(tmp_path / "nope"), "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 2
    assert "nope is not a folder" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["load", str(tmp_path / "empty"), "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 2
    assert "no summary.json" in result.output


def test_db_migrate_status_checksum_and_export(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    migrated = runner.invoke(app, ["db", "migrate", "--db", str(db)])
    assert migrated.exit_code == 0
    assert "applied 0001, 0002" in migrated.output
    assert "up to date" in runner.invoke(app, ["db", "migrate", "--db", str(db)]).output
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1))
    runner.invoke(app, ["load", str(batch), "--db", str(db)])
    status = runner.invoke(app, ["db", "status", "--db", str(db)])
    assert status.exit_code == 0
    assert "site01_2026-11-01" in status.output
    digest = runner.invoke(app, ["db", "checksum", "--db", str(db)])
    assert re.fullmatch(r"[0-9a-f]{64}\n", digest.output)
    before = runner.invoke(app, ["db", "checksum", "--db", str(db), "--as-of", "0"])
    assert before.output != digest.output
    exported = runner.invoke(app, ["export", "--format", "parquet", str(tmp_path / "out"), "--db", str(db)])
    assert exported.exit_code == 0
    assert (tmp_path / "out" / "vertebrae" / "site_id=site01" / "data_0.parquet").is_file()


def test_export_refuses_other_formats(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "--format", "csv", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "use --format parquet" in result.output


def test_default_warehouse_is_the_setting_relative_to_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 2, seed=1))
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["load", str(batch)]).exit_code == 0
    assert (tmp_path / "data" / "warehouse.duckdb").is_file()
    monkeypatch.setenv("COHORTPOOL_WAREHOUSE", str(tmp_path / "elsewhere.duckdb"))
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0
    assert (tmp_path / "elsewhere.duckdb").is_file()


def _submission(folder: Path, batch: Path, counts: dict[str, int], privacy: dict | None = None) -> Path:
    summary = json.loads((batch / "summary.json").read_text())
    folder.mkdir(parents=True)
    document = {"site_id": summary["site_id"], "night": summary["night"], "counts": counts, "files": {}}
    if privacy is not None:
        document["privacy"] = privacy
    (folder / "submission.json").write_text(json.dumps(document))
    return folder


def test_load_publishes_the_reader_copy_and_records_the_submission_counts(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1))
    submission = _submission(tmp_path / "s", batch, {"input_files": 9, "deidentified": 7, "quarantined": 2})
    result = runner.invoke(app, ["load", str(batch), "--db", str(db), "--submission", str(submission)])
    assert result.exit_code == 0, result.output
    published = tmp_path / "published" / "w.duckdb"
    assert f"published {published} (load 1" in result.output
    with duckdb.connect(str(published), read_only=True) as con:
        row = con.execute(
            "SELECT deid_input_files, deid_quarantined, deid_duplicates FROM raw.batches"
        ).fetchone()
    assert row == (9, 2, None)
    # nothing new to load: the copy stays as it is
    again = runner.invoke(app, ["load", str(batch), "--db", str(db), "--submission", str(submission)])
    assert again.exit_code == 0 and "published" not in again.output


def test_load_records_the_k_and_the_generalisations_the_night_was_released_under(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1))
    chosen = {"age_band_years": 5, "age_top_code": 90, "first_exam_date_precision": "month",
              "merge_rare_categories_below": 0, "merged_columns": []}  # fmt: skip
    privacy = {"k_anonymity": 4, "generalisations": chosen}
    submission = _submission(tmp_path / "s", batch, {"input_files": 9}, privacy)
    result = runner.invoke(app, ["load", str(batch), "--db", str(db), "--submission", str(submission)])
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT release_k_anonymity, release_generalisations FROM raw.batches").fetchone()
    assert row == (4, "age in 5-year bands; ages from 90 shown as 90; first exam date to the month")


def test_load_without_publish_and_db_publish_later(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1))
    assert runner.invoke(app, ["load", str(batch), "--db", str(db), "--no-publish"]).exit_code == 0
    assert not (tmp_path / "published").exists()
    done = runner.invoke(app, ["db", "publish", "--db", str(db)])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "published" / "w.duckdb").is_file()
    assert (tmp_path / "published" / "dictionary.html").is_file()
    missing = runner.invoke(app, ["db", "publish", "--db", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 2 and "none.duckdb" in missing.output  # a wrong --db: usage


def test_a_submission_without_its_batch_is_bad_usage(tmp_path: Path) -> None:
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1))
    other = write_batch(tmp_path / "o", "site02", "2026-11-01", make_tables("site02", 3, seed=2))
    submission = _submission(tmp_path / "s", other, {})
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["load", str(batch), "--db", str(db), "--submission", str(submission)])
    assert result.exit_code == 2
    assert "site02 2026-11-01" in result.output and "no validated batch" in result.output
    assert not db.exists()
