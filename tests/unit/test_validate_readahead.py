"""Reading a table in chunks holds a bounded amount of the file, however slowly the chunks are checked;
the accepted file written chunk by chunk does not depend on the chunks' size.

Arrow's streaming CSV reader reads up to 32 blocks ahead of the one handed out, in the background: with
blocks of the chunk's size (2 MiB) a 98 MB reads table had 68 MB of it read ahead while the first chunks
were being checked (issue 16 item 2). Blocks are now small and grouped into chunks.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cohortpool.validate.accepted import ROW_GROUP_ROWS, AcceptedWriter
from cohortpool.validate.frames import READ_BLOCK_BYTES, read_chunks, read_table
from cohortpool.validate.suites import load_suite

CHUNK = 1024 * 1024
MIB = 1024 * 1024


#: a cell of each suite type (the reader's casts are not what this test measures)
_CELL = {"str": "yes", "Int64": "2", "float64": "22.5", "datetime64[us]": "2024-03-02"}


def _reads_table(path: Path, rows: int) -> None:
    suite = load_suite("reads")
    cells = [_CELL[t] for t in suite.column_types.values()]
    row = ",".join(cells) + "\n"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(",".join(suite.column_types) + "\n")
        handle.writelines(row for _ in range(rows))


def test_a_slow_consumer_does_not_let_the_reader_hold_the_file(tmp_path: Path) -> None:
    _reads_table(tmp_path / "reads.csv", 360_000)
    size = (tmp_path / "reads.csv").stat().st_size
    assert size > 24 * CHUNK  # more than the read-ahead of chunk-sized blocks could hold unnoticed
    suite = load_suite("reads")
    held: list[float] = []
    rows = 0
    tracemalloc.start()
    try:
        for chunk in read_chunks(tmp_path, suite, CHUNK):
            time.sleep(0.05)  # a check slower than the disk: the reader runs ahead meanwhile
            held.append((tracemalloc.get_traced_memory()[0] + pa.total_allocated_bytes()) / MIB)
            rows += len(chunk.text)
            del chunk
    finally:
        tracemalloc.stop()
    assert rows == 360_000
    assert len(held) >= 20
    # the chunk being checked (its text and typed frames, a few MiB) and at most 32 small blocks ahead
    assert max(held) < 16 + 32 * READ_BLOCK_BYTES / MIB, f"{max(held):.0f} MiB held while reading"


def test_the_accepted_file_does_not_depend_on_the_chunks_size(tmp_path: Path) -> None:
    """Row groups of a fixed size, and their bytes too: Parquet's pages follow the arrays it is given."""
    rows = ROW_GROUP_ROWS + 4_321
    _reads_table(tmp_path / "reads.csv", rows)
    suite = load_suite("reads")
    typed = read_table(tmp_path, suite).typed[suite.columns]
    # values that differ row to row, so that pages fill up
    for col, gx_type in suite.column_types.items():
        if gx_type == "str":
            typed[col] = [f"{col}-{n * 7919 % rows}" for n in range(rows)]
        elif gx_type == "float64":
            typed[col] = [n * 0.37 % 101 for n in range(rows)]
    typed["source_row"] = pd.array(range(1, rows + 1), dtype="Int64")
    lineage = {"batch_id": "b", "source_file": "reads.csv", "source_sha256": "0"}
    files = []
    for size in (rows, 10_000, 777):
        path = tmp_path / f"accepted_{size}.parquet"
        writer = AcceptedWriter(suite, lineage, path)
        for start in range(0, rows, size):
            writer.append(typed.iloc[start : start + size])
        writer.close()
        files.append(path.read_bytes())
    assert pq.ParquetFile(tmp_path / "accepted_777.parquet").metadata.num_row_groups == 2
    assert files[1] == files[0] and files[2] == files[0]
