"""A table read in chunks validates exactly as the whole table does (issue 16 item 2).

Each scenario is validated twice, with chunks far larger than the tables (the whole-table path) and with
chunks of a few rows (every table but the tiny clinical one is read in several chunks), and the two
batches must be the same bytes: summary, quarantine and warning lines, Data Docs, accepted rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from validate_support import copy_clean, read_rows, set_cell, write_rows

from cohortpool.contract import resources
from cohortpool.validate import linesort, sqlrun
from cohortpool.validate.batch import Validator
from cohortpool.validate.chunks import validate_in_chunks
from cohortpool.validate.frames import read_chunks, read_table

pytestmark = pytest.mark.slow

#: a few rows of reads.csv (2 KB, header 305 bytes) per chunk
SMALL = 600
WHOLE = 1 << 40


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _defects(sub: Path) -> None:
    """Planted defects, duplicates far apart (other chunks) and a warning-only row."""
    set_cell(sub, "clinical", 2, "sex", "male")
    set_cell(sub, "clinical", 3, "bmi", "231.70")
    set_cell(sub, "reads", 5, "level", "L7")
    set_cell(sub, "reads", 1, "marrow_oedema", "yes")
    header, rows = read_rows(sub / "reads.csv")
    rows.append(dict(rows[0]))  # identical copy of the first read, chunks away: the first is kept
    changed = dict(rows[3])
    changed["height_loss_pct"] = "12.5"
    rows.append(changed)  # same key as the 4th read, other values: neither is kept
    rows.insert(12, {**rows[1], "patient_id": "P0000000000000000", "accession_id": "A0000000000000000"})
    for number, row in enumerate(rows, 1):
        row["source_row"] = str(number)
    rows[6]["source_row"] = "not a number"  # reported by position
    write_rows(sub / "reads.csv", header, rows)
    header, series = read_rows(sub / "imaging_manifest.csv")
    series.append(dict(series[2]))  # a repeated series UID, last chunk against the first
    write_rows(sub / "imaging_manifest.csv", header, series)


def _non_ascii(sub: Path) -> None:
    """Non-ASCII text in checked columns: an accented level, and study dates written with fullwidth and
    Arabic-Indic digits (dates to GX's strptime, and to the SQL since it reads every Unicode digit)."""
    header, rows = read_rows(sub / "reads.csv")
    rows[9]["level"] = "L\u00e9"
    write_rows(sub / "reads.csv", header, rows)
    header, series = read_rows(sub / "imaging_manifest.csv")
    series[1]["study_date"] = "\uff12\uff10\uff12\uff13-08-13"
    series[-1]["study_date"] = "2023-08-1\u0669"
    series[-2]["study_date"] = "2023-08-1\u00e9"
    write_rows(sub / "imaging_manifest.csv", header, series)


def _ragged(sub: Path) -> None:
    """A row with a missing field near the end: Arrow stops mid-file, pandas rejects the table."""
    data = (sub / "imaging_manifest.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    data[-2] = data[-2].rsplit(",", 1)[0] + "\n"
    (sub / "imaging_manifest.csv").write_text("".join(data), encoding="utf-8")


def _no_rows(sub: Path) -> None:
    for name in ("reads.csv", "imaging_manifest.csv"):
        header = (sub / name).read_text(encoding="utf-8").splitlines(keepends=True)[0]
        (sub / name).write_text(header + "\n" * 700, encoding="utf-8")  # a header and blank lines


def _huge_cells(sub: Path) -> None:
    """A quarantined value and a column name over the csv module's 128 KiB field limit (found by the
    fuzz tier: the Data Docs page's line counts crashed on the value)."""
    set_cell(sub, "reads", 4, "level", "L" * 200_000)
    header, rows = read_rows(sub / "imaging_manifest.csv")
    extra = "x" * 140_000
    write_rows(sub / "imaging_manifest.csv", [*header, extra], [{**row, extra: "1"} for row in rows])


def _shuffled(sub: Path) -> None:
    """Claimed source rows out of file order, some shared: report lines are sorted across chunks by
    the claimed row, and lines of one row and check keep the findings' order."""
    header, rows = read_rows(sub / "reads.csv")
    for number, row in enumerate(rows):
        row["source_row"] = str(len(rows) - number)
    for n in (1, len(rows) // 2, len(rows) - 2):  # three chunks apart, one claimed row, one check
        rows[n]["source_row"] = "5"
        rows[n]["level"] = "L9"
        rows[n]["genant_grade"] = "7"
    write_rows(sub / "reads.csv", header, rows)


def _everything_fails(sub: Path) -> None:
    """Every read quarantined, most for three reasons (the lines of each chunk are sorted and written as
    they come: the rows are numbered in order and no key repeats)."""
    header, rows = read_rows(sub / "reads.csv")
    for n, row in enumerate(rows):
        row["level"] = f"X{n}"
        if n % 3:
            row["patient_id"] = f"P{n:016d}"  # no such patient: the cross-table check fails too
    write_rows(sub / "reads.csv", header, rows)


def _repeated_keys(sub: Path) -> None:
    """Keys repeated across every chunk: 14 disagreeing copies of one read (more than a line lists),
    6 identical copies of another, a missing cell in some copies, claimed rows shared."""
    header, rows = read_rows(sub / "reads.csv")
    conflicting = [{**rows[0], "height_loss_pct": f"{10 + n}.0"} for n in range(14)]
    conflicting[3]["wedge_shape"] = ""
    identical = [dict(rows[1]) for _ in range(6)]
    for n, row in enumerate(conflicting + identical):
        rows.insert((n * 7) % len(rows), row)
    for number, row in enumerate(rows, 1):
        row["source_row"] = str(number // 2 + 1)
    write_rows(sub / "reads.csv", header, rows)


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "repeated_keys": _repeated_keys,
    "shuffled": _shuffled,
    "everything_fails": _everything_fails,
    "huge_cells": _huge_cells,
    "clean": lambda sub: None,
    "defects": _defects,
    "non_ascii": _non_ascii,
    "ragged": _ragged,
    "no_rows": _no_rows,
}


@pytest.fixture(autouse=True)
def _lines_written_in_small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sorted report lines and repeated keys are fetched a few at a time, so that parts meet."""
    monkeypatch.setattr(linesort, "WRITE_ROWS", 7)
    monkeypatch.setattr(sqlrun, "_KEY_ROWS", 2)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_chunks_give_the_batch_the_whole_table_gives(tmp_path: Path, scenario: str) -> None:
    sub = copy_clean(tmp_path / "submission")
    SCENARIOS[scenario](sub)
    Validator(chunk_bytes=WHOLE).validate_submission(sub, tmp_path / "whole")
    Validator(chunk_bytes=SMALL).validate_submission(sub, tmp_path / "chunks")
    whole, chunks = _files(tmp_path / "whole"), _files(tmp_path / "chunks")
    assert sorted(whole) == sorted(chunks)
    assert [name for name in whole if whole[name] != chunks[name]] == []


def test_repeated_keys_are_resolved_across_chunks(tmp_path: Path) -> None:
    """The copies of a key spread over every chunk are compared as one group: the disagreeing ones all
    quarantined (a line names the first 10 and how many more), the identical ones but the first."""
    sub = copy_clean(tmp_path / "submission")
    _repeated_keys(sub)
    Validator(chunk_bytes=SMALL).validate_submission(sub, tmp_path / "chunks")
    text = (tmp_path / "chunks" / "quarantine.csv").read_text(encoding="utf-8")
    # the rows also share source rows two by two (those lines are the source_row check's own)
    lines = "\n".join(line for line in text.splitlines() if "source_row must be unique" not in line)
    assert lines.count("share the key but disagree") == 15  # the first read and its 14 changed copies
    assert lines.count("and 5 more share the key") == 15
    assert lines.count("(identical values; the first copy is kept)") == 6


def test_a_table_that_errors_is_rejected_whole_in_chunks_too(tmp_path: Path) -> None:
    """A suite expectation that cannot run rejects every row, found across every chunk."""
    sub = copy_clean(tmp_path / "submission")
    project = tmp_path / "expectations"
    project.mkdir()
    src = Path(__file__).resolve().parents[2] / "expectations"
    for name in os.listdir(src):
        (project / name).write_bytes((src / name).read_bytes())
    suite = json.loads((project / "reads.json").read_text())
    suite["expectations"].append(
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "no_such_column", "min_value": 0},
            "meta": {"severity": "warning", "reason": "a reviewer's typo"},
        }
    )
    (project / "reads.json").write_text(json.dumps(suite))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resources, "suites_dir", lambda: project)
        Validator(chunk_bytes=WHOLE).validate_submission(sub, tmp_path / "whole")
        outcome = Validator(chunk_bytes=SMALL).validate_submission(sub, tmp_path / "chunks")
    assert outcome.tables["reads"].rejected and outcome.tables["reads"].accepted == 0
    assert _files(tmp_path / "whole") == _files(tmp_path / "chunks")


def test_small_chunks_really_split_the_tables(tmp_path: Path) -> None:
    """The scenarios above run the chunked path: several chunks, rows in order, none lost."""
    sub = copy_clean(tmp_path / "submission")
    validator = Validator(chunk_bytes=SMALL)
    for table in ("reads", "imaging_manifest"):
        suite = validator.suites[table]
        chunks = list(read_chunks(sub, suite, SMALL))
        whole = read_table(sub, suite)
        assert len(chunks) >= 3
        assert [c.offset for c in chunks] == [
            sum(len(c.text) for c in chunks[:n]) for n in range(len(chunks))
        ]
        assert sum(len(c.text) for c in chunks) == whole.rows_in
        ran = validate_in_chunks(
            validator.runner, sub, suite, "site02", SMALL, duckdb.connect(), tmp_path, "batch"
        )
        assert ran is not None and ran.rows_in == whole.rows_in


def test_scratch_beside_the_batch_is_removed_and_a_killed_runs_is_replaced(tmp_path: Path) -> None:
    """The scratch database and files live beside the batch (not in a possibly in-memory /tmp); a run
    leaves none behind, and one a killed run left is cleared by the next."""
    sub = copy_clean(tmp_path / "submission")
    stale = tmp_path / ".batch.scratch"
    stale.mkdir()
    (stale / "keys.duckdb").write_bytes(b"left by a run killed with -9")
    Validator(chunk_bytes=SMALL).validate_submission(sub, tmp_path / "batch")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch", "submission"]


_NOT_SORTABLE = [{"error": "partial_exception_counts requires a hashable type"}]


@pytest.mark.parametrize(
    ("values", "counts"),
    [
        # ties at the limit: the value seen first is kept (None before T1 and L3)
        (
            ["L9", "L2", "L9", None, "L2", "T1", "L3"] * 3,
            [{"value": "L2", "count": 6}, {"value": "L9", "count": 6}, {"value": None, "count": 3}],
        ),
        ([("a", 1), ("b", 2), ("a", 1)], [{"value": ("a", 1), "count": 2}, {"value": ("b", 2), "count": 1}]),
        (
            [{"level": "L9", "grade": 2}, {"level": "L9", "grade": 2}, {"level": "T1", "grade": None}],
            [{"value": ("L9", 2), "count": 2}, {"value": ("T1", None), "count": 1}],
        ),
        (["x", None, "x", None], _NOT_SORTABLE),  # a tie between text and null cannot be sorted
    ],
)
def test_failing_values_added_in_parts_report_what_the_whole_list_does(
    values: list[object], counts: list[dict[str, object]]
) -> None:
    """A chunked check keeps the first failing values and a count per value, not every value; its
    sample and counts are GX's for the whole list, however the values arrive."""
    whole = sqlrun.FailingValues(3, values)
    parts = sqlrun.FailingValues(3)
    for start in range(0, len(values), 2):
        parts.add(values[start : start + 2])
    assert parts.first == whole.first == values[:3]
    assert parts.counts() == whole.counts() == counts
