"""Fuzz: mutated site tables through ``cohortpool.features.pseudonymise_tables``.

Whatever the bytes, the call either pseudonymises both tables or refuses the mutated one with
``TableResult.error`` naming the file (and leaves nothing of it); when it pseudonymises, every input row
is one output row (``source_row`` 1..n), the output is UTF-8 CSV with the contract's header, no cell a
spreadsheet would run as a formula, and no identifying value of the site's export.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from csv_mutations import SITE_TABLES, TOKEN, TableSample, table_samples, to_text
from hypothesis import given
from profiles import examples

from cohortpool.contract.tables import CLINICAL, READS
from cohortpool.deid import Pseudonymiser
from cohortpool.features.tables import pseudonymise_tables

KEYS = Pseudonymiser(b"fuzz-tier-secret-not-a-real-one-0123456789abcdef", "site01")
OUT_COLUMNS = {"clinical": CLINICAL.released, "reads": READS.released}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _records(data: bytes) -> int | None:
    """Data records the csv module reads in ``data`` (blank lines not counted), or None if unreadable."""
    try:
        return (
            sum(1 for record in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")) if record) - 1
        )
    except (UnicodeDecodeError, csv.Error):
        return None


def _live_formula(cell: str) -> bool:
    if not cell.startswith(FORMULA_START):
        return False
    try:
        float(cell)
    except ValueError:
        return True
    return False


def _pseudonymise(sample: TableSample, root: Path) -> tuple[dict[str, int] | None, Path, dict[str, bytes]]:
    """The mutated table beside the other (valid) one, pseudonymised; its counts (None if refused)."""
    drop, out = root / "drop", root / "out"
    drop.mkdir()
    inputs = {t: to_text(*SITE_TABLES[t]).encode() for t in SITE_TABLES}
    inputs[sample.table] = sample.data()
    for table, data in inputs.items():
        (drop / f"{table}.csv").write_bytes(data)
    result = pseudonymise_tables(drop, out, KEYS)
    if result.error is not None:  # refused: the message names the file, and nothing of it is left
        assert f"{sample.table}.csv" in result.error, f"the refusal does not name the file: {result.error}"
        assert not (out / f"{sample.table}.csv").exists()
        return None, out, inputs
    return result.counts, out, inputs


@examples(ci=60)
@given(sample=table_samples("site", ("clinical", "reads")))
def test_a_mutated_table_is_pseudonymised_row_for_row_or_refused_naming_the_file(sample: TableSample) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        counts, out, inputs = _pseudonymise(sample, Path(tmp))
        if counts is None:
            return
        for table, columns in OUT_COLUMNS.items():
            text = (out / f"{table}.csv").read_bytes().decode("utf-8")  # UTF-8, whatever came in
            header, *rows = list(csv.reader(io.StringIO(text, newline="")))
            assert tuple(header) == columns
            assert len(rows) == counts[f"{table}_rows"]
            # nothing lost, nothing invented: one output row per record of the input
            assert counts[f"{table}_rows"] == _records(inputs[table])
            assert [row[-1] for row in rows] == [str(n) for n in range(1, len(rows) + 1)]
            assert [cell for row in rows for cell in row if _live_formula(cell)] == []


@examples(ci=60)
@given(sample=table_samples("site", ("clinical", "reads")))
def test_no_identifying_value_of_a_mutated_table_leaves_the_site(sample: TableSample) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        counts, out, _ = _pseudonymise(sample, Path(tmp))
        if counts is None:
            return
        for table in OUT_COLUMNS:
            leaked = TOKEN.findall((out / f"{table}.csv").read_bytes())
            assert leaked == [], f"{table}.csv carries {leaked}"
