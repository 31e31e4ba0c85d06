"""Fuzz: mutated submission tables through the hub's validation.

Two depths. The table reader (:func:`cohortpool.validate.frames.read_table`), where every byte of a
table is parsed, takes many examples: it reads a table or rejects it whole with the documented
:class:`~cohortpool.validate.frames.TableRejected` naming the file. The whole validation
(:func:`cohortpool.validate.validate_submission`, Great Expectations running every suite) takes a few
examples in CI, because one costs seconds: it finishes, and every row of every table is accepted or
quarantined with a reason, in ``summary.json``, the accepted Parquet files and ``quarantine.csv`` alike.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from csv_mutations import CLEAN_SUBMISSION, TableSample, table_samples
from hypothesis import given
from hypothesis import strategies as st
from profiles import examples

from cohortpool.validate import validate_submission
from cohortpool.validate.batch import Validator
from cohortpool.validate.frames import TableRejected, read_table
from cohortpool.validate.suites import load_suites

TABLES = ("clinical", "reads", "imaging_manifest")
SUITES = load_suites()


@examples(ci=60)
@given(sample=table_samples("submission", TABLES))
def test_a_mutated_table_is_read_or_rejected_whole_naming_the_file(sample: TableSample) -> None:
    suite = SUITES[sample.table]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{sample.table}.csv").write_bytes(sample.data())
        try:
            frames = read_table(Path(tmp), suite)
        except TableRejected as exc:
            assert exc.file == f"{sample.table}.csv" and str(exc).startswith(exc.file)
            assert exc.rows_in >= 0 and exc.problem.strip()
            return
    assert list(frames.text.columns) == list(suite.columns)
    assert len(frames.text) == len(frames.typed) == frames.rows_in
    assert set(suite.column_types) <= set(frames.typed.columns)


@examples(ci=8, long=200)
@given(
    samples=st.lists(table_samples("submission", TABLES), min_size=1, max_size=3, unique_by=lambda s: s.table)
)
def test_every_row_of_a_mutated_submission_is_accepted_or_quarantined_with_a_reason(
    samples: list[TableSample],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        submission, out = Path(tmp) / "submission", Path(tmp) / "batch"
        shutil.copytree(CLEAN_SUBMISSION, submission)
        for sample in samples:
            (submission / f"{sample.table}.csv").write_bytes(sample.data())

        outcome = validate_submission(submission, out)

        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        quarantine = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
        assert (quarantine["reason"].str.strip() != "").all(), "a quarantine line without a reason"
        for table in TABLES:
            counts = summary["tables"][table]
            assert counts["rows_in"] == counts["accepted"] + counts["quarantined"], (table, counts)
            assert pq.read_metadata(out / "accepted" / f"{table}.parquet").num_rows == counts["accepted"]
            assert outcome.tables[table].rows_in == counts["rows_in"]
            lines = quarantine[quarantine["table"] == table]
            assert (len(lines) > 0) == (counts["quarantined"] > 0), (table, counts, len(lines))
            if counts["rejected"]:
                assert counts["accepted"] == 0 and f"{table}.csv" in counts["rejected"]


@examples(ci=6, long=100)
@given(
    samples=st.lists(table_samples("submission", TABLES), min_size=1, max_size=3, unique_by=lambda s: s.table)
)
def test_a_mutated_submission_validates_the_same_in_chunks_as_whole(samples: list[TableSample]) -> None:
    """Tables read a few rows at a time give the batch the whole tables give, byte for byte (a table
    that cannot be read in chunks with the same meaning is read whole)."""
    with tempfile.TemporaryDirectory() as tmp:
        submission = Path(tmp) / "submission"
        shutil.copytree(CLEAN_SUBMISSION, submission)
        for sample in samples:
            (submission / f"{sample.table}.csv").write_bytes(sample.data())
        batches = []
        for chunk_bytes in (1 << 40, 600):
            out = Path(tmp) / f"batch_{chunk_bytes}"
            Validator(chunk_bytes=chunk_bytes).validate_submission(submission, out)
            batches.append(
                {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
            )
        whole, chunks = batches
        assert sorted(whole) == sorted(chunks)
        assert [str(name) for name in whole if whole[name] != chunks[name]] == []
