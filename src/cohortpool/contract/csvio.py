"""CSV as every stage reads and writes it: UTF-8, comma-separated, one header row, nothing evaluated.

Three rules stages must agree on live here:

- **spreadsheet safety**: a text cell that starts with ``= + - @``, a tab or a carriage return is a
  formula to Excel and LibreOffice (OWASP "CSV injection"); it gets a leading apostrophe, unless it is a
  plain number (``-1.25`` cannot run). Site staff open ledgers and crosswalks, hub staff open
  submissions, quarantine lists and reports;
- **reading**: UTF-8 (a BOM tolerated: it carries no data), never a guessed encoding; a header that names
  a column twice is refused (a reader would otherwise keep one copy silently); rows stream, so a table of
  millions of rows needs memory for one row;
- **writing**: ``\\n`` line ends, a header row, every cell formula-safe.
"""

from __future__ import annotations

import codecs
import csv
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

#: what makes a spreadsheet evaluate a cell
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


class CsvTable:
    """A CSV file opened for streaming: its header, then its rows as dicts (``csv.DictReader`` shape:
    a short row's missing cells are None, a long row's extra cells are listed under None).

    Use as a context manager; iterating yields ``(line, row)`` with the file line a row starts on.
    """

    def __init__(self, path: Path, required: Sequence[str] = ()) -> None:
        self.path = path
        if not path.is_file():
            raise CsvError(
                f"{path}: missing; the site drop must contain it (docs/data_contract.md section 1)"
            )
        self._handle: IO[str] = path.open(encoding="utf-8-sig", newline="")
        self._reader = csv.reader(self._handle)
        try:
            self.header: tuple[str, ...] = tuple(self._next_row() or ())
        except BaseException:
            self.close()
            raise
        twice = duplicated(self.header)
        if twice:
            self.close()
            raise CsvError(
                f"{path}: the header names column(s) {', '.join(twice)} more than once; keep one column of "
                "each name (which copy holds the data cannot be guessed)"
            )
        missing = [c for c in required if c not in self.header]
        if missing:
            self.close()
            joined = ",".join(self.header)
            hint = " (the header has no commas: separate columns with ',')" if "," not in joined else ""
            raise CsvError(
                f"{path}: missing column(s) {', '.join(missing)}{hint}; see docs/data_contract.md section 1"
            )

    def _next_row(self) -> list[str] | None:
        start = self._reader.line_num + 1  # the line the row starts on (a failed read moves line_num on)
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except UnicodeDecodeError:
            line = first_non_utf8_line(self.path)
            raise CsvError(f"{self.path}: line {line} is not UTF-8; re-export the table as UTF-8") from None
        except csv.Error as exc:  # a cell past the csv module's field limit (128 KiB), a NUL byte, ...
            raise CsvError(f"{self.path}: line {start} cannot be read as CSV: {exc}") from None

    def __iter__(self) -> Iterator[tuple[int, dict[str | None, Any]]]:
        width = len(self.header)
        while True:
            start = self._reader.line_num + 1
            cells = self._next_row()
            if cells is None:
                return
            if not cells:  # a blank line is no row (csv.DictReader skips it too)
                continue
            row: dict[str | None, Any] = dict(zip(self.header, cells, strict=False))
            if len(cells) > width:
                row[None] = cells[width:]
            elif len(cells) < width:
                row.update((name, None) for name in self.header[len(cells) :])
            yield start, row

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
