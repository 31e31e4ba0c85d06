"""CSV as every stage reads and writes it: UTF-8, comma-separated, one header row, nothing evaluated.

Three rules stages must agree on live here:

- **spreadsheet safety**: a text cell that starts with ``= + - @``, a tab or a carriage return is a
  formula to Excel and LibreOffice (OWASP "CSV injection"); it gets a leading apostrophe, unless it is a
  plain number (``-1.25`` cannot run). Site staff open ledgers and crosswalks, hub staff open
  submissions, quarantine lists and reports;
- **reading**: UTF-8 (a BOM tolerated: it carries no data), never a guessed encoding; a header that names
  a column twice is refused (a reader would otherwise keep one copy silently); rows stream, so a table of
  millions of rows needs memory for one row (each cell at most :data:`FIELD_LIMIT`);
- **writing**: ``\\n`` line ends, a header row, every cell formula-safe.

A message about a table names the file, the line, the column (by its contract name, or by its position:
a header cell that names no contract column may be a value, e.g. a headerless file's first MRN) and what
to do, never a cell's value.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

#: what makes a spreadsheet evaluate a cell
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: the longest cell a table may hold (the csv module's default is 128 KiB, which refused a whole table for
#: one long free-text address the site drops anyway); a row needs memory for its cells, each at most this
FIELD_LIMIT = 1 << 20
#: a row's shape, when its cells cannot be matched to the header's columns
TOO_MANY = "too many cells"
TOO_FEW = "too few cells"
_DOCS = "see docs/data_contract.md section 1"


class CsvError(ValueError):
    """A table cannot be read; the message names the file, the line or column, and what to do."""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def formula_safe(value: Any) -> Any:
    """``value``, with a leading ``'`` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def duplicated(header: Sequence[str]) -> list[str]:
    """Column names that occur more than once in ``header``, in first-seen order."""
    counts = Counter(header)
    return [name for name in dict.fromkeys(header) if counts[name] > 1]


def column_key(name: str) -> str:
    """A header cell as it is matched to a contract column: blanks around it and case ignored."""
    return name.strip().casefold()


def _loose_key(name: str) -> str:
    """A header cell with spaces and hyphens read as ``_`` too (only for the hint of a missing column)."""
    return "_".join(column_key(name).replace("-", " ").split())


def _positions(numbers: Sequence[int]) -> str:
    """``columns 3 and 7`` / ``columns 3, 7 and 9`` (1-based positions)."""
    words = [str(n) for n in numbers]
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
    return f"column{'s' if len(words) > 1 else ''} {listed}"


def _raise_field_limit() -> None:
    """The csv module's limit is one per process: it is only ever raised here, never lowered, so
    another reader running meanwhile is never refused what it could read before."""
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)


def first_non_utf8_line(path: Path, block_size: int = 1 << 20) -> int:
    """The 1-based line of the first byte that is not UTF-8 (the text decoder fails a whole block ahead
    of the rows read, so the line is found again on the raw bytes, one block at a time)."""
    line, pending = 1, b""
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            data = pending + block
            try:
                _, consumed = codecs.utf_8_decode(data, "strict", False)
            except UnicodeDecodeError as exc:
                return line + data[: exc.start].count(b"\n")
            line += data[:consumed].count(b"\n")
            pending = data[consumed:]
    return line


_LINE_END = re.compile(r"\r\n?|\n")


def oversized_cell(path: Path, line: int, limit: int = FIELD_LIMIT, block_size: int = 1 << 16) -> int | None:
    """The 0-based position of the first cell longer than ``limit`` in the record starting on ``line``
    (lines counted as the csv module counts them: ``\\n``, ``\\r\\n`` or ``\\r``), or None.

    The csv module says only that a field is too large; this reads the record again, one block at a
    time, keeping the length of the cell being read, never the cell (the default dialect: ``,``
    separates, ``"`` quotes, ``""`` is a quote inside quotes)."""
    at_line, after_cr = 1, False
    field, length, quoted, quote_seen = 0, 0, False, False
    with path.open(encoding="utf-8-sig", newline="", errors="replace") as handle:
        for block in iter(lambda: handle.read(block_size), ""):
            start = 0
            if after_cr and block.startswith("\n"):
                start = 1  # the second half of a \r\n split between blocks
            after_cr = False
            if at_line < line:
                for end in _LINE_END.finditer(block, start):
                    at_line, start = at_line + 1, end.end()
                    after_cr = end.group() == "\r" and start == len(block)
                    if at_line == line:
                        break
                else:
                    continue
            for char in block[start:]:
                if quoted and not quote_seen:
                    if char == '"':
                        quote_seen = True
                        continue
                    length += 1
                elif char == '"' and quote_seen:  # a doubled quote inside a quoted cell
                    quote_seen, length = False, length + 1
                elif char == '"' and length == 0 and not quoted:
                    quoted = True
                    continue
                elif char == ",":
                    field, length, quoted, quote_seen = field + 1, 0, False, False
                    continue
                elif char in "\r\n":
                    return None  # the record ended without a cell past the limit
                else:
                    quoted, quote_seen, length = False, False, length + 1
                if length > limit:
                    return field
    return None


@dataclass(frozen=True)
class CsvRow:
    """One data row: the file line it starts on, its cells by column name, every cell as read and,
    when they cannot be matched to the header's columns, its shape (:data:`TOO_MANY`,
    :data:`TOO_FEW`; else empty)."""

    line: int
    values: Mapping[str, str | None]
    cells: tuple[str, ...]
    shape: str = ""

    def __getitem__(self, column: str) -> str | None:
        """A cell by column name: None when the row is too short to hold it (or the column is absent)."""
        return self.values.get(column)


class CsvTable:
    """A CSV file opened for streaming: its header, then its rows (:class:`CsvRow`).

    ``known`` are the columns the file's contract names (default ``required``): a header cell matches one
    ignoring blanks around it and case (``MRN``, `` mrn`` are ``mrn``; :attr:`notes` says so), a repeated
    contract column refuses the table, a first line naming none of them is refused as not a header.
    Header cells naming no contract column are columns never used (a repeat of one is no problem);
    columns without a name are ignored while every cell of them is empty (:attr:`notes`), and refuse
    the table at the first row with a value in one.

    Use as a context manager; iterating yields the rows in file order (blank lines are no rows).
    """

    def __init__(self, path: Path, required: Sequence[str] = (), known: Sequence[str] | None = None) -> None:
        self.path = path
        if not path.is_file():
            raise CsvError(f"{path}: missing; the site drop must contain it ({_DOCS})")
        _raise_field_limit()
        self._handle: IO[str] = path.open(encoding="utf-8-sig", newline="")
        self._reader = csv.reader(self._handle)
        #: what the caller should tell the site about the header (never a value)
        self.notes: list[str] = []
        known = tuple(required if known is None else known)
        #: contract column names by position (the only header cells a message may repeat)
        self._contract_at: dict[int, str] = {}
        try:
            first = self._next_row()
            self.header: tuple[str, ...] = tuple(first or ())
            #: the position of every named column, contract columns under their contract name
            self.columns = self._columns(first, tuple(required), known)
        except BaseException:
            self.close()
            raise
        self._contract_at = {i: name for name, i in self.columns.items() if name in known}
        self.width = len(self.header)
        #: positions of the header cells without a name
        self.unnamed = tuple(i for i, name in enumerate(self.header) if not name.strip())
        named = [i for i, name in enumerate(self.header) if name.strip()]
        #: a row must reach the last named column (unnamed columns after it may be left out)
        self.named_width = named[-1] + 1 if named else 0

    def _columns(
        self, first: list[str] | None, required: tuple[str, ...], known: tuple[str, ...]
    ) -> dict[str, int]:
        """Check the header against the contract; the position of each named column."""
        path, header = self.path, self.header
        expected = ", ".join(known)
        if first is None:
            raise CsvError(
                f"{path}: the file is empty; its first line must be the header ({expected}); {_DOCS}"
            )
        if not any(name.strip() for name in header):
            raise CsvError(
                f"{path}: line 1 is empty; the first line must be the header naming the columns "
                f"({expected}); {_DOCS}"
            )
        contract = {column_key(c): c for c in known}
        at: dict[str, list[int]] = {}
        for i, name in enumerate(header):
            key = column_key(name)
            if key:
                at.setdefault(contract.get(key, name), []).append(i)
        found = [c for c in known if c in at]
        if len(known) > 1 and len(header) == 1 and not found:
            # one cell: another separator (';', tab) or no header; the cell itself is never repeated
            raise CsvError(
                f"{path}: missing column(s) {', '.join(required or known)} (the header has no commas: "
                f"separate columns with ','); {_DOCS}"
            )
        if known and not found:
            raise CsvError(
                f"{path}: the first line is not a header: it names none of the contract's columns "
                f"({expected}); put the header row first; {_DOCS}"
            )
        twice = [(c, at[c]) for c in known if len(at.get(c, ())) > 1]
        if twice:
            named = "; ".join(f"{c} ({_positions([i + 1 for i in where])})" for c, where in twice)
            raise CsvError(
                f"{path}: the header names column(s) {', '.join(c for c, _ in twice)} more than once: "
                f"{named}; keep one column of each name (which copy holds the data cannot be guessed; "
                "names are matched ignoring case and blanks)"
            )
        if not known:
            repeated = [where for where in at.values() if len(where) > 1]
            if repeated:
                same = "; ".join(f"{_positions([i + 1 for i in w])} have the same name" for w in repeated)
                raise CsvError(f"{path}: {same}; keep one column of each name")
        missing = [c for c in required if c not in at]
        if missing:
            hints = []
            loose = {_loose_key(c): c for c in missing}
            for i, name in enumerate(header):
                if _loose_key(name) in loose:
                    column = loose[_loose_key(name)]
                    hints.append(f"found {name.strip()!r} in column {i + 1}: write it {column}")
            hint = f" ({'; '.join(hints)}: column names are lower case, words joined by '_')" if hints else ""
            raise CsvError(f"{path}: missing column(s) {', '.join(missing)}{hint}; {_DOCS}")
        renamed = [(header[at[c][0]], c) for c in found if header[at[c][0]] != c]
        if renamed:
            self.notes.append(
                "read "
                + ", ".join(f"{name.strip()!r} as {c}" for name, c in renamed)
                + " (column names are lower case without blanks)"
            )
        return {name: where[0] for name, where in at.items()}

    def _next_row(self) -> list[str] | None:
        start = self._reader.line_num + 1  # the line the row starts on (a failed read moves line_num on)
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except UnicodeDecodeError:
            line = first_non_utf8_line(self.path)
            raise CsvError(f"{self.path}: line {line} is not UTF-8; re-export the table as UTF-8") from None
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise CsvError(self._oversized(start)) from None
            # a NUL byte, ...: the csv module's words name no value
            raise CsvError(
                f"{self.path}: line {start} cannot be read as CSV: {exc}; re-export the table as plain text"
            ) from None

    def _oversized(self, line: int) -> str:
        """The refusal of a cell past :data:`FIELD_LIMIT`: its line, and its column when it can be told
        (by name when the header names a contract column there)."""
        position = oversized_cell(self.path, line)
        where = ""
        if position is not None:
            name = self._contract_at.get(position)
            where = f", column {position + 1}" + (f" ({name})" if name else "")
        return (
            f"{self.path}: line {line}{where} has a cell longer than {FIELD_LIMIT // (1 << 20)} MiB, "
            "the longest a table may hold; shorten it or leave the column out of the export"
        )

    def __iter__(self) -> Iterator[CsvRow]:
        while True:
            start = self._reader.line_num + 1
            cells = self._next_row()
            if cells is None:
                break
            if not cells:  # a blank line is no row (csv.DictReader skips it too)
                continue
            found = len(cells)
            if found < self.named_width:
                shape = TOO_FEW
            elif found > self.width and any(c.strip() for c in cells[self.width :]):
                shape = TOO_MANY
            else:
                shape = ""
                for i in self.unnamed:
                    if i < found and cells[i].strip():
                        raise CsvError(
                            f"{self.path}: line {start}: column {i + 1} has no name in the header but holds "
                            "a value; name the column in the header or delete it"
                        )
            values = {name: cells[i] if i < found else None for name, i in self.columns.items()}
            yield CsvRow(start, values, tuple(cells), shape)
        if self.unnamed:
            self.notes.append(
                f"{self._unnamed_words()} every cell of {'them' if len(self.unnamed) > 1 else 'it'} is "
                "empty: ignored"
            )

    def _unnamed_words(self) -> str:
        n = len(self.unnamed)
        what = f"{n} columns have no name" if n > 1 else f"column {self.unnamed[0] + 1} has no name"
        return f"{what} in the header ({_positions([i + 1 for i in self.unnamed])}; trailing commas?);"

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> CsvTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ``rows`` (dicts; keys outside ``columns`` ignored, missing ones empty) as UTF-8 CSV with a
    header, ``\\n`` line ends and every cell formula-safe; returns the number of rows.

    Rows are written as they come (a generator of millions of rows needs memory for one); a cell is
    only looked at twice when it starts with a formula character.
    """
    count = 0
    starts = frozenset(FORMULA_START)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            cells = [row.get(c, "") for c in columns]
            writer.writerow([formula_safe(v) if isinstance(v, str) and v[:1] in starts else v for v in cells])
            count += 1
    return count
