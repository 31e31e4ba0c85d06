"""Valid CSV tables and the hypothesis strategies that break them as spreadsheet exports and people do.

Provenance: synthetic. The site tables (``clinical.csv``, ``reads.csv``) have the columns of data
contract section 1 (taken from ``cohortpool.synth.tables``) and three patients whose identifying values
(MRN, name, address, phone, accession number, reader) are unique tokens ``FTnnnX``; the submission
tables are the clean validation fixture (``tests/data/validate/clean``).

Mutations act on the text, then the text is encoded: a header cell repeated, a cell quoted around
commas, quotes and line breaks, a stray quote, a row with a field too many or too few, another
separator, CRLF or CR line ends, a huge cell (past the csv module's 128 KiB field limit too), NUL bytes,
a formula, arbitrary text inserted, a truncation; encoded as UTF-8, UTF-8 with BOM, Latin-1, cp1252,
GB18030 or UTF-16.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from cohortpool.synth.tables import CLINICAL_COLUMNS, READS_COLUMNS

CLEAN_SUBMISSION = Path(__file__).resolve().parents[1] / "data" / "validate" / "clean"
#: the columns of the site tables that identify someone: never in a submission
IDENTIFYING = {
    "clinical": ("mrn", "patient_name", "address", "phone"),
    "reads": ("mrn", "accession_number", "reader"),
}
ENCODINGS = ("utf-8", "utf-8", "utf-8-sig", "latin-1", "cp1252", "gb18030", "utf-16")


def _site_tables() -> dict[str, tuple[list[str], list[list[str]]]]:
    """The two site tables (header, rows) with tokens in every identifying cell."""
    counter = iter(range(1, 1000))

    def tok() -> str:
        return f"FT{next(counter):03d}X"

    clinical, reads = [], []
    for p in range(3):
        mrn = f"M{tok()}"
        values = {
            "mrn": mrn, "patient_name": f"{tok()}^{tok()}", "birth_date": f"195{p}-0{p + 1}-1{p}",
            "sex": "FM"[p % 2], "address": f"{p + 1} {tok()} Road", "phone": f"+44 {tok()}",
            "height_cm": "160.0", "weight_kg": "60.0", "bmi": "23.44", "dxa_t_score": "-2.6",
            "diagnosis": "OP", "pathology_confirmed": "yes",
            "primary_tumour": "", "first_exam_date": f"2023-0{p + 1}-15",
        }  # fmt: skip
        clinical.append([values[c] for c in CLINICAL_COLUMNS])
        for modality in ("XR", "CT"):
            read = {c: "no" for c in READS_COLUMNS}
            read.update(
                mrn=mrn, accession_number=f"A{tok()}", modality=modality, level="L1",
                reader=f"{tok()}^{tok()}", read_date="2023-02-01", fracture_line="yes", genant_grade="2",
                height_loss_pct="30.0",
            )  # fmt: skip
            reads.append([read[c] for c in READS_COLUMNS])
    return {"clinical": (list(CLINICAL_COLUMNS), clinical), "reads": (list(READS_COLUMNS), reads)}


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


SITE_TABLES = _site_tables()
SUBMISSION_TABLES = {
    t: _read(CLEAN_SUBMISSION / f"{t}.csv") for t in ("clinical", "reads", "imaging_manifest")
}


#: every identifying cell of the site tables carries at least one token; nothing else does
TOKEN = re.compile(rb"FT[0-9]{3}X")


def to_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    return buffer.getvalue()


# --- mutations --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """One change to a table: ``kind`` with a row (0 is the header), a column, a number and a text."""

    kind: str
    row: int = 0
    col: int = 0
    number: int = 0
    text: str = ""


@dataclass(frozen=True)
class TableSample:
    """A valid table (by name, from ``SITE_TABLES`` or ``SUBMISSION_TABLES``), edits and an encoding."""

    source: str
    table: str
    edits: tuple[Edit, ...]
    encoding: str

    def text(self) -> str:
        tables = SITE_TABLES if self.source == "site" else SUBMISSION_TABLES
        header, rows = tables[self.table]
        return apply(header, rows, self.edits)

    def data(self) -> bytes:
        return self.text().encode(self.encoding, errors="replace")


_CELL_TEXT = st.one_of(
    st.sampled_from(
        ["a,b", 'say "hi"', "two\nlines", "two\r\nlines", "", " ", "\x00", "€ 5", "张伟", "=1+1"]
    ),
    st.text(max_size=20),
)
_FORMULAS = st.sampled_from(
    ['=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "\t=1", "\r=1"]
)


@st.composite
def _edit(draw: st.DrawFn, n_rows: int, n_cols: int) -> Edit:
    kind = draw(
        st.sampled_from(
            ["dup_header", "cell", "cell", "stray_quote", "extra_field", "missing_field", "separator",
             "line_end", "huge", "nul", "formula", "insert", "truncate", "drop_rows", "blank_line"]
        )
    )  # fmt: skip
    row = draw(st.integers(1, max(n_rows, 1)))
    col = draw(st.integers(0, n_cols - 1))
    if kind == "dup_header":
        return Edit(kind, 0, col, draw(st.integers(0, n_cols - 1)))
    if kind == "cell":
        return Edit(kind, row, col, text=draw(_CELL_TEXT))
    if kind == "separator":
        return Edit(kind, text=draw(st.sampled_from([";", "\t", "|", " "])))
    if kind == "line_end":
        return Edit(kind, text=draw(st.sampled_from(["\r\n", "\r"])))
    if kind == "huge":
        return Edit(kind, row, col, draw(st.sampled_from([1_000, 100_000, 131_073, 300_000])))
    if kind == "formula":
        return Edit(kind, row, col, text=draw(_FORMULAS))
    if kind in ("nul", "insert", "truncate", "stray_quote"):
        return Edit(kind, number=draw(st.integers(0, 10_000)), text=draw(st.text(min_size=1, max_size=8)))
    return Edit(kind, row, col, draw(st.integers(0, n_rows)))


def table_samples(source: str, tables: tuple[str, ...]) -> st.SearchStrategy[TableSample]:
    """A table of ``source`` ("site" or "submission"), one to four edits and an encoding."""

    @st.composite
    def build(draw: st.DrawFn) -> TableSample:
        table = draw(st.sampled_from(tables))
        header, rows = (SITE_TABLES if source == "site" else SUBMISSION_TABLES)[table]
        edits = draw(st.lists(_edit(len(rows), len(header)), min_size=1, max_size=4))
        encoding = draw(st.sampled_from(ENCODINGS))
        return TableSample(source, table, tuple(edits), encoding)

    return build()


def apply(header: list[str], rows: list[list[str]], edits: tuple[Edit, ...]) -> str:
    """The table's text after the edits: cell edits on the grid first, then edits of the text."""
    grid = [list(header), *(list(r) for r in rows)]
    for e in edits:
        target = grid[min(e.row, len(grid) - 1)]
        col = min(e.col, len(target) - 1) if target else 0
        if e.kind == "dup_header":
            grid[0][e.number % len(grid[0])] = grid[0][col]
        elif e.kind in ("cell", "formula") and target:
            target[col] = e.text
        elif e.kind == "huge" and target:
            target[col] = ("x" * 63 + ",") * (e.number // 64) if e.col % 2 else "y" * e.number
        elif e.kind == "extra_field":
            target.insert(col, "extra")
        elif e.kind == "missing_field" and target:
            del target[col]
        elif e.kind == "drop_rows":
            del grid[1 + e.number % max(len(grid) - 1, 1) :]
    text = to_text(grid[0], grid[1:])
    for e in edits:
        at = e.number % (len(text) + 1)
        if e.kind == "separator":
            text = text.replace(",", e.text)
        elif e.kind == "line_end":
            text = text.replace("\n", e.text)
        elif e.kind == "nul":
            text = text[:at] + "\x00" + text[at:]
        elif e.kind == "stray_quote":
            text = text[:at] + '"' + text[at:]
        elif e.kind == "insert":
            text = text[:at] + e.text + text[at:]
        elif e.kind == "blank_line":
            text = text.replace("\n", "\n\n", 1)
    cuts = [e.number % (len(text) + 1) for e in edits if e.kind == "truncate"]
    return text[: min(cuts)] if cuts else text
