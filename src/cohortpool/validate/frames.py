"""Read one submission table into the two frames the suites run on.

Every cell is first read as text, exactly as submitted, so that a malformed number or date is never lost
or silently turned into a null: the ``text`` frame is what format expectations (``applies_to: "text"``) and
``quarantine.csv`` see. The ``typed`` frame casts each contract column to its suite type; a cell that does
not parse becomes null there, and the text-frame format expectation quarantines its row.

Two CSV parsers, one meaning: pandas' C parser defines what a table is; Arrow's multi-threaded reader
(three to four times faster on 10^6 rows) is tried first and its result used only where it cannot differ:
it refuses (and pandas reads) any file it cannot parse exactly as one header and rows of equal width, and a
header with a repeated or empty name (pandas renames those). ``tests/unit/test_validate_frames.py``
compares both on odd files (quotes, embedded newlines, blank lines, CR line ends, ragged rows, ...).
"""

from __future__ import annotations

import csv
import ctypes
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from cohortpool.contract.csvio import duplicated
from cohortpool.validate.suites import TableSuite


class TableRejected(Exception):
    """A whole table cannot be validated (missing file or column, unreadable); the others still are."""

    def __init__(self, table: str, file: str, problem: str, rows_in: int, sha256: str | None) -> None:
        super().__init__(f"{file}: {problem}")
        self.table = table
        self.file = file
        self.problem = problem
        self.rows_in = rows_in
        self.sha256 = sha256


@dataclass
class TableFrames:
    """One submission table, as text and typed, with its provenance."""

    table: str
    file: str
    sha256: str
    text: pd.DataFrame
    typed: pd.DataFrame
    extra_columns: list[str] = field(default_factory=list)
    #: a chunk of a table (:func:`read_chunks`): the table's row number (0-based) of the chunk's first row
    offset: int = 0
    #: rows of the whole table, where ``text`` holds only some of them (indexed by their positions)
    rows_total: int | None = None

    @property
    def rows_in(self) -> int:
        return len(self.text) if self.rows_total is None else self.rows_total

    def source_rows(self) -> pd.Series:
        """The row's ``source_row`` where it is a valid row number, else its 1-based position in the file.

        Rows are addressed by their index, their 0-based position in the table (a whole table's index is
        0 to n - 1; a table of selected rows keeps their positions)."""
        positional = pd.Series(self.typed.index + 1, index=self.typed.index, dtype="Int64")
        claimed = self.typed["source_row"]
        return claimed.where(claimed >= 1, positional).fillna(positional).astype("Int64")


#: delimiters spreadsheet exports use instead of commas
_SEPARATORS = ((";", "semicolon"), ("\t", "tab"), ("|", "pipe"))


def _count_data_rows(data: bytes) -> int:
    """Data rows of a file that could not be parsed: its non-empty lines minus the header."""
    lines = [line for line in data.splitlines() if line.strip()]
    return max(len(lines) - 1, 0)


#: numbers Arrow parses exactly as pandas does (plain decimal digits): the fast path of _cast
_PLAIN_INTEGER = r"^-?[0-9]{1,18}$"
_PLAIN_DECIMAL = r"^-?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)$"
_INT64_LIMIT = 2.0**63


def _cast(text: pd.Series, gx_type: str) -> pd.Series:
    """The column typed as the suite says; what does not parse, or is not a whole number for ``Int64``,
    or does not fit 64 bits, becomes null (the text-frame format checks quarantine such rows).

    Meaning: ``pd.to_numeric(errors="coerce")``. Plain decimal strings (the common case) are parsed by
    Arrow, which gives the same numbers (both round correctly; an 18-digit integer is exact), everything
    else by pandas itself; ``tests/unit/test_validate_frames.py`` compares both on odd values.
    """
    if gx_type == "str":
        return text
    if gx_type == "datetime64[us]":
        return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[us]")
    values = pa.array(text, from_pandas=True)
    present = text.notna().to_numpy()
    plain = pc.fill_null(
        pc.match_substring_regex(values, _PLAIN_INTEGER if gx_type == "Int64" else _PLAIN_DECIMAL), False
    ).to_numpy(zero_copy_only=False)
    rest = present & ~plain
    others = (
        pd.to_numeric(text[rest], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if rest.any()
        else np.empty(0)
    )
    if gx_type == "Int64":
        integers = np.zeros(len(text), dtype=np.int64)
        valid = plain.copy()
        if plain.any():
            integers[plain] = pc.cast(pc.filter(values, plain), pa.int64()).to_numpy()
        # a non-whole number (e.g. "2.5") is not an integer, nor is 1e30: null
        whole = np.isfinite(others) & (others == np.round(others)) & (np.abs(others) < _INT64_LIMIT)
        where = np.flatnonzero(rest)[whole]
        integers[where] = others[whole].astype(np.int64)
        valid[where] = True
        return pd.Series(pd.arrays.IntegerArray(integers, ~valid), index=text.index, name=text.name)
    numbers = np.full(len(text), np.nan)
    if plain.any():
        numbers[plain] = pc.cast(pc.filter(values, plain), pa.float64()).to_numpy()
    numbers[rest] = others
    return pd.Series(numbers, index=text.index, name=text.name, dtype="float64")


#: pandas' text dtype (Arrow storage, NaN for a missing value): what ``astype("str")`` gives
TEXT_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)


def parse_with_pandas(content: str) -> pd.DataFrame:
    """The table as pandas' C parser reads it: every cell text, empty cells ``""`` (the definition)."""
    return pd.read_csv(
        io.StringIO(content), dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=True
    )


def parse_with_arrow(data: bytes) -> pd.DataFrame | None:
    """The same table through Arrow's reader, or None where Arrow might read it differently."""
    end = data.find(b"\n")
    first_line = (data if end < 0 else data[:end]).rstrip(b"\r")
    if b'"' in first_line or b"\r" in first_line:
        return None  # a quoted or oddly ended header: leave its reading to pandas
    try:
        names = next(csv.reader([first_line.decode("utf-8")]), [])
    except (UnicodeDecodeError, csv.Error):  # csv.Error: a name over the csv module's field limit
        return None
    if not names or len(set(names)) != len(names) or any(not name for name in names):
        return None  # pandas renames repeated and empty names ("x.1", "Unnamed: 3")
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(use_threads=True),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None
    if table.column_names != names:
        return None
    return _arrow_frame(table)


def _nulls_for_empty(column: pd.Series) -> pd.Series:
    """Empty cells become null (the contract's missing value); other text is kept as submitted."""
    values = pa.array(column, from_pandas=True)
    emptied = pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)
    return pd.Series(
        pd.arrays.ArrowStringArray(emptied), index=column.index, dtype=TEXT_DTYPE, name=column.name
    )


def read_table(submission_dir: Path, suite: TableSuite) -> TableFrames:
    """Read ``<submission_dir>/<table>.csv``; raise :class:`TableRejected` naming the file and the problem."""
    name = f"{suite.table}.csv"
    path = submission_dir / name
    if not path.is_file():
        raise TableRejected(suite.table, name, "file is missing from the submission", 0, None)
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    # Arrow checks UTF-8 as it reads; the slower paths below (and their error messages) need the text
    frame = parse_with_arrow(data.removeprefix(b"\xef\xbb\xbf"))
    if frame is not None:
        del data  # the file's bytes are not needed once parsed (10^6 reads: 94 MB)
        built = _frames(suite, name, sha256, frame)
        del frame  # the parsed text, copied into the text frame
        release_arrow_memory()
        return built
    try:
        # the contract says UTF-8 without BOM; a BOM is tolerated (it carries no data) rather than
        # turning the first column name into a "missing column"
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TableRejected(
            suite.table,
            name,
            f"not UTF-8 (byte {exc.start}, line {line}); re-export the table as UTF-8",
            _count_data_rows(data),
            sha256,
        ) from exc
    problem = _header_problem(content)
    if problem is not None:
        raise TableRejected(suite.table, name, problem, _count_data_rows(data), sha256)
    try:
        frame = parse_with_pandas(content)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TableRejected(
            suite.table, name, f"not a comma-separated table: {exc}".strip(), _count_data_rows(data), sha256
        ) from exc
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas takes a first data row longer than the header as an index column and shifts every
        # column: reported as the ragged row it is (pandas says so itself for a later row)
        raise TableRejected(suite.table, name, _ragged_rows(content), _count_data_rows(data), sha256)
    return _frames(suite, name, sha256, frame)


def _header_problem(content: str) -> str | None:
    """Why the header cannot name the table's columns (a name given twice: which copy holds the data
    cannot be guessed, and pandas would keep both under invented names), else None."""
    try:
        header = next(csv.reader(io.StringIO(content)), [])
    except csv.Error:
        return None  # pandas' parser says what is wrong with it
    twice = duplicated(header)
    if twice:
        return (
            f"the header names column(s) {', '.join(repr(name) for name in twice)} more than once; "
            "keep one column of each name (which copy holds the data cannot be guessed)"
        )
    return None


def _ragged_rows(content: str) -> str:
    """The first row whose number of cells is not the header's, said as pandas says it for a later row."""
    rows = csv.reader(io.StringIO(content))
    width = len(next(rows, []))
    for cells in rows:
        if cells and len(cells) != width:
            return (
                f"not a comma-separated table: expected {width} fields in line {rows.line_num}, saw "
                f"{len(cells)}; every row must have as many cells as the header"
            )
    return "not a comma-separated table: a row has more cells than the header"


class NotStreamable(Exception):
    """A table :func:`read_chunks` cannot read with the meaning :func:`read_table` gives: read it whole."""


def _streamable_header(handle: BinaryIO, suite: TableSuite) -> list[str]:
    """The header's names, if Arrow reads this file exactly as :func:`parse_with_arrow` would and every
    contract column is there (a missing column is rejected by :func:`read_table`, which counts the rows);
    else :class:`NotStreamable`. Leaves ``handle`` at the start of the header."""
    start = handle.tell()
    first_line = handle.readline().rstrip(b"\n").rstrip(b"\r")
    handle.seek(start)
    if b'"' in first_line or b"\r" in first_line:
        raise NotStreamable("a quoted or oddly ended header")
    try:
        names = next(csv.reader([first_line.decode("utf-8")]), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise NotStreamable("a header that is not UTF-8, or a name over the csv module's limit") from exc
    if not names or len(set(names)) != len(names) or any(not name for name in names):
        raise NotStreamable("a repeated or empty column name")
    if any(col not in names for col in suite.columns):
        raise NotStreamable("a missing column")
    return names


#: the size of the blocks Arrow's streaming reader reads from the file. Its reader reads up to 32 blocks
#: ahead of the one being checked, whatever the consumer's pace (measured: 68 MB held with 2 MiB blocks
#: on a 98 MB reads table), so blocks are kept small and grouped into a chunk of ``chunk_bytes``: the
#: read-ahead holds at most 32 x 256 KiB = 8 MiB.
READ_BLOCK_BYTES = 256 * 1024


def _grouped(batches: Iterator[pa.RecordBatch], per_chunk: int) -> Iterator[list[pa.RecordBatch]]:
    """Consecutive non-empty ``batches``, ``per_chunk`` at a time (the last group may be shorter)."""
    group: list[pa.RecordBatch] = []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        group.append(batch)
        if len(group) == per_chunk:
            yield group
            group = []
    if group:
        yield group


def read_chunks(submission_dir: Path, suite: TableSuite, chunk_bytes: int) -> Iterator[TableFrames]:
    """``<submission_dir>/<table>.csv`` as consecutive chunks of about ``chunk_bytes`` of the file, each
    with the text and typed frames :func:`read_table` builds for the whole table (index 0 to n - 1 within
    the chunk, :attr:`TableFrames.offset` its place in the table); a table without rows is one empty chunk.

    Why: memory bounded by the chunk, whatever the table's size (issue 16 item 2). Arrow's streaming
    reader parses exactly as its whole-file reader (:func:`parse_with_arrow`) with the same options;
    where that reader would not be used, or stops on a row it cannot parse, :class:`NotStreamable` is
    raised (possibly after some chunks): the caller then reads the table whole. ``sha256`` is left empty
    (the caller hashes the file as it streams it). The reader reads blocks of :data:`READ_BLOCK_BYTES`,
    grouped into chunks, so that what it reads ahead stays small (see there).
    """
    name = f"{suite.table}.csv"
    path = submission_dir / name
    if not path.is_file():
        raise NotStreamable("no such file")
    with path.open("rb") as handle:
        if handle.read(3) != b"\xef\xbb\xbf":
            handle.seek(0)
        names = _streamable_header(handle, suite)
        block = min(chunk_bytes, READ_BLOCK_BYTES)
        try:
            reader = pa_csv.open_csv(
                handle,
                read_options=pa_csv.ReadOptions(use_threads=True, block_size=block),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    column_types={col: pa.string() for col in names},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            if reader.schema.names != names:
                raise NotStreamable("Arrow read other column names")
            offset = 0
            for batches in _grouped(reader, max(1, chunk_bytes // block)):
                frame = _arrow_frame(pa.Table.from_batches(batches))
                chunk = _frames(suite, name, "", frame)
                chunk.offset = offset
                offset += len(frame)
                yield chunk
            if offset == 0:
                yield _frames(suite, name, "", _arrow_frame(reader.schema.empty_table()))
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
            raise NotStreamable(str(exc)) from exc


def _arrow_frame(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas(
        types_mapper={pa.string(): TEXT_DTYPE, pa.large_string(): TEXT_DTYPE}.get
    )
    return frame


def _frames(suite: TableSuite, name: str, sha256: str, frame: pd.DataFrame) -> TableFrames:
    """The text and typed frames of a parsed table, or :class:`TableRejected` for missing columns."""
    missing = [col for col in suite.columns if col not in frame.columns]
    if missing:
        header = str(frame.columns[0]) if len(frame.columns) == 1 else ""
        hint = next(
            (
                f"; it looks {label}-separated, export it comma-separated"
                for sep, label in _SEPARATORS
                if sep in header
            ),
            "",
        )
        raise TableRejected(
            suite.table,
            name,
            f"missing column(s) {', '.join(missing)}; the data contract (section 2) lists "
            f"{', '.join(suite.columns)}{hint}",
            len(frame),
            sha256,
        )
    extra = [str(col) for col in frame.columns if col not in suite.column_types]
    frame = frame.reset_index(drop=True)
    text = pd.DataFrame({col: _nulls_for_empty(frame[col].astype("str")) for col in suite.columns})
    typed = pd.DataFrame(
        {col: _cast(text[col], gx_type) for col, gx_type in suite.column_types.items()}, index=text.index
    )
    # columns outside the contract are shown to the suite (expect_table_columns_to_match_set reports them)
    # but never loaded: they may hold anything a site exported by mistake
    for col in extra:
        typed[col] = frame[col].astype("str").reset_index(drop=True)
    return TableFrames(suite.table, name, sha256, text, typed, extra)


def release_arrow_memory() -> None:
    """Give back to the system the memory Arrow's allocator keeps for reuse after a table is built or
    written (its own pool's, mimalloc, where the environment chooses it; cohortpool's default is the C
    library's, :mod:`cohortpool`).

    Measured on 10^6 reads with mimalloc (issue 16 item 2): 320 MB freed by Arrow but still resident after
    :func:`read_table`; the next table would reuse it, but the largest table comes first in memory and the
    others add to it. Costs milliseconds.
    """
    pa.default_memory_pool().release_unused()


def release_memory() -> None:
    """Give back to the system what every allocator of the process keeps for reuse: Arrow's, and the C
    library's (glibc keeps freed memory in its arenas; ``malloc_trim`` returns it).

    Called between a validation's tables and its Data Docs pages (issue 16 item 2): pandas, Arrow and
    DuckDB free their chunks' memory into the allocators, and GX imported next would otherwise be
    placed beside it. Done by hand through ctypes, as no library exposes ``malloc_trim``; a C library
    without it (musl, macOS) is left alone.
    """
    release_arrow_memory()
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
