"""Tables a hub should not take at face value: a repeated header, a ragged first row, a file changed
after the site packaged the night. Each was validated silently (or shifted every column) before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from validate_support import copy_clean, read_rows, write_rows

from cohortpool.contract.files import sha256_file
from cohortpool.validate import validate_submission

pytestmark = pytest.mark.slow


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_a_header_that_repeats_a_column_refuses_the_table_naming_it(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    lines = _lines(sub / "clinical.csv")
    header, rows = lines[0], lines[1:]
    bmi = header.split(",").index("bmi")
    (sub / "clinical.csv").write_text(
        "\n".join([header + ",bmi", *(row + "," + row.split(",")[bmi] for row in rows)]) + "\n",
        encoding="utf-8",
    )
    outcome = validate_submission(sub, tmp_path / "validated")
    clinical = outcome.tables["clinical"]
    assert clinical.rejected is not None and "'bmi' more than once" in clinical.rejected
    assert (clinical.rows_in, clinical.accepted, clinical.quarantined) == (len(rows), 0, len(rows))
    assert outcome.tables["reads"].rejected is None  # the other tables are validated
    assert outcome.exit_code == 1


@pytest.mark.parametrize("extra", [",", ",x,y"])
def test_a_first_row_longer_than_the_header_is_refused_not_shifted(tmp_path: Path, extra: str) -> None:
    """pandas took the first column as an index and moved every value one column to the left: the
    reasons named the wrong columns and the key column showed an age."""
    sub = copy_clean(tmp_path / "submission")
    lines = _lines(sub / "clinical.csv")
    lines[1] += extra
    (sub / "clinical.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    outcome = validate_submission(sub, tmp_path / "validated")
    rejected = outcome.tables["clinical"].rejected
    assert rejected is not None
    width = len(lines[0].split(","))
    assert f"expected {width} fields in line 2, saw {width + extra.count(',')}" in rejected
    assert outcome.tables["clinical"].rows_in == len(lines) - 1


def _list_files(sub: Path) -> None:
    """List every file's sha256 in submission.json, as the site's packaging does."""
    meta = json.loads((sub / "submission.json").read_text(encoding="utf-8"))
    files = sorted(p for p in sub.rglob("*") if p.is_file() and p.name != "submission.json")
    meta["files"] = {p.relative_to(sub).as_posix(): sha256_file(p) for p in files}
    (sub / "submission.json").write_text(json.dumps(meta), encoding="utf-8")


def test_a_file_changed_after_packaging_is_validated_and_said(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    _list_files(sub)
    _, rows = read_rows(sub / "reads.csv")
    (sub / "reads.csv").write_text((sub / "reads.csv").read_text(encoding="utf-8") + "\n", encoding="utf-8")
    (sub / "notes.txt").write_text("added at the hub", encoding="utf-8")
    out = tmp_path / "validated"
    proc = subprocess.run(
        [sys.executable, "-m", "cohortpool", "validate", str(sub), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr  # validated as it is: its rows are all fine
    assert "warning: reads.csv does not have the sha256 submission.json lists" in proc.stderr
    assert "warning: notes.txt is not listed in submission.json" in proc.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["changed_after_packaging"]) == {"reads.csv", "notes.txt"}
    assert summary["tables"]["reads"]["accepted"] == len(rows)
    clean = copy_clean(tmp_path / "clean")
    _list_files(clean)
    assert "changed_after_packaging" not in json.loads(
        (validate_submission(clean, tmp_path / "v2").out_dir / "summary.json").read_text(encoding="utf-8")
    )


@pytest.mark.parametrize("table", ["clinical", "reads"])
def test_an_exact_copy_of_a_row_keeps_the_first_and_records_the_copy(tmp_path: Path, table: str) -> None:
    """A line pasted twice (its source_row too) quarantined both copies: the first for its repeated
    source_row, though its reason said the first copy was kept."""
    sub = copy_clean(tmp_path / "submission")
    lines = _lines(sub / f"{table}.csv")
    lines.insert(2, lines[1])
    (sub / f"{table}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    outcome = validate_submission(sub, tmp_path / "validated")
    summary = outcome.tables[table]
    assert (summary.rows_in, summary.accepted, summary.quarantined) == (len(lines) - 1, len(lines) - 2, 1)
    quarantine = (tmp_path / "validated" / "quarantine.csv").read_text(encoding="utf-8")
    assert "duplicate of source row 1 (identical values; the first copy is kept)" in quarantine
    assert "disagree" not in quarantine


def test_two_rows_claiming_one_source_row_with_different_values_are_both_quarantined(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    header, rows = read_rows(sub / "reads.csv")
    rows[1]["source_row"] = rows[0]["source_row"]
    write_rows(sub / "reads.csv", header, rows)
    outcome = validate_submission(sub, tmp_path / "validated")
    assert outcome.tables["reads"].quarantined == 2
    quarantine = (tmp_path / "validated" / "quarantine.csv").read_text(encoding="utf-8")
    assert "share the key but disagree; none is kept" in quarantine
