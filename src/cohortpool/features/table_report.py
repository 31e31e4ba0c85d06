"""What the site's table pseudonymisation changed or could not release, cell by cell, in the site's terms.

A cell that does not leave as the site sent it (a code outside its value set, free text outside the
vocabulary, a date that gives no age) is reported with the site's own file, column and row (the 1-based
data row, as ``source_row``, and the file line), a *value class* that describes the value without
repeating it (``4 characters: letters``, ``a date after first_exam_date``), what was released instead
and what to fix in the export. The night goes on: the row is released with the marker or the empty
derived value, and the hub quarantines what its suites reject.

The originals are written only to the site's vault, ``VAULT/tables/<night>.csv`` (0600 in a 0700 folder,
like the de-identification ledger; written beside and renamed into place; rewritten only when it
changes, so a second run of the night leaves it alone). What leaves the site (``submission.json``) and
what is printed or logged carries counts, columns, rows and value classes, never a value.
"""

from __future__ import annotations

import contextlib
import csv
import filecmp
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cohortpool.contract.csvio import TOO_FEW, TOO_MANY, formula_safe
from cohortpool.contract.tables import INVALID as INVALID_WORD

VAULT_FOLDER = "tables"
VAULT_COLUMNS = (
    "table",
    "source_row",
    "line",
    "column",
    "value_class",
    "outcome",
    "released",
    "original",
    "what_to_fix",
)
#: kinds of finding (the ``outcome`` text says it in words)
INVALID_CODE = "invalid"  # a kept value outside its value set or number format -> <invalid>
MAPPED = "mapped"  # free text mapped to a vocabulary term through a synonym or case folding
OTHER = "other"  # free text outside the vocabulary -> the vocabulary's other term
NOT_DERIVED = "not derived"  # a date that gives no age or shifted date -> empty (the hub quarantines)
NO_ID = "no identifier"  # an empty MRN or accession number -> empty pseudonym (the hub quarantines)
#: a row whose cells cannot be matched to the header's columns (none of its values released):
#: ``TOO_MANY``, ``TOO_FEW`` (the reader's row shapes)
ROW_KINDS = (TOO_MANY, TOO_FEW)
#: kinds the site should fix (mapped values are only recorded)
TO_FIX = (INVALID_CODE, OTHER, NOT_DERIVED, NO_ID, *ROW_KINDS)
#: rows listed per column and kind in the printed summary (the vault file has every one)
SHOWN_ROWS = 5
_DMY = re.compile(r"[0-9]{1,2}[/.][0-9]{1,2}[/.][0-9]{2,4}")
_ISO_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_WEEK = re.compile(r"[0-9]{4}-?W[0-9]{2}(?:-?[0-9])?", re.IGNORECASE)
_ISO_ORDINAL = re.compile(r"[0-9]{4}-[0-9]{3}")
_WITH_TIME = re.compile(r"[0-9]{4}-?[0-9]{2}-?[0-9]{2}[T ].*", re.IGNORECASE)


def value_class(text: str | None) -> str:
    """A description of ``text`` that does not repeat it: its length and the kinds of character."""
    value = (text or "").strip()
    if not value:
        return "empty"
    kinds = [
        name
        for name, present in (
            ("letters", any(c.isalpha() for c in value)),
            ("digits", any(c.isdigit() for c in value)),
            ("spaces", any(c.isspace() for c in value)),
            ("punctuation", any(not (c.isalnum() or c.isspace()) for c in value)),
        )
        if present
    ]
    return f"{len(value)} characters: {', '.join(kinds)}"


def date_class(text: str | None) -> str:
    """What is wrong with a date cell that does not parse as ``YYYY-MM-DD``."""
    value = (text or "").strip()
    if not value:
        return "empty"
    if any(c.isdigit() and not c.isascii() for c in value):
        return "digits other than 0-9 (fullwidth or another script), not YYYY-MM-DD"
    if _ISO_SHAPE.fullmatch(value):
        return "YYYY-MM-DD but not a calendar date"
    if _DMY.fullmatch(value):
        return "a date written day/month/year or month/day/year, not YYYY-MM-DD"
    if _ISO_WEEK.fullmatch(value):
        return "an ISO week date (year, week, weekday), not YYYY-MM-DD"
    if _ISO_ORDINAL.fullmatch(value):
        return "an ISO ordinal date (year, day of the year), not YYYY-MM-DD"
    if _WITH_TIME.fullmatch(value):
        return "a date with a time, not YYYY-MM-DD"
    if len(value) == 8 and value.isdigit() and value[:2] in ("19", "20"):
        return "8 digits without dashes (YYYYMMDD?), not YYYY-MM-DD"
    if value.isdigit():
        return "a number, not a date (a spreadsheet's date serial number?)"
    return f"not a date YYYY-MM-DD ({value_class(value)})"


#: a YYYY-MM-DD date the patient's shift would move out of the calendar (before year 1, after 9999)
UNSHIFTABLE = "a date at the edge of the calendar (year 1 or 9999): it cannot be shifted"


@dataclass
class _Group:
    count: int = 0
    rows: list[int] = field(default_factory=list)
    classes: Counter[str] = field(default_factory=Counter)
    outcome: str = ""
    fix: str = ""


class TableReport:
    """Collects the findings of one night's tables: counts and a few rows for the summary, every finding
    with its original value in the vault file (streamed: a table of millions of rows needs no memory
    for its findings)."""

    def __init__(self, vault_dir: Path | None, night: str) -> None:
        self.path = vault_dir / VAULT_FOLDER / f"{night}.csv" if vault_dir is not None else None
        self._partial = self.path.with_name(f".{self.path.name}.partial") if self.path else None
        self._handle: IO[str] | None = None
        self._writer: Any = None
        #: (file, column, kind, fix) -> what the summary shows
        self.groups: dict[tuple[str, str, str, str], _Group] = {}
        #: rows not released because their patient withdrew, per file
        self.withdrawn_rows: Counter[str] = Counter()
        #: vocabulary terms released as "other" because they were rare, per column
        self.merged_rare: Counter[str] = Counter()
        #: what a file's header or shape told, per file (no value: column names and positions)
        self.notes: list[tuple[str, str]] = []

    def open(self) -> TableReport:
        if self.path is not None and self._partial is not None:
            for folder in (self.path.parent.parent, self.path.parent):
                folder.mkdir(parents=True, exist_ok=True)
                folder.chmod(0o700)
            fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle, lineterminator="\n")
            self._writer.writerow(VAULT_COLUMNS)
        return self

    def add(
        self,
        file: str,
        row: int,
        line: int,
        column: str,
        kind: str,
        *,
        original: str | None,
        released: str,
        outcome: str,
        fix: str,
        value_kind: str | None = None,
    ) -> None:
        """Record one cell: in the vault file with its original, in the summary without it."""
        klass = value_kind if value_kind is not None else value_class(original)
        group = self.groups.setdefault((file, column, kind, fix), _Group(outcome=outcome, fix=fix))
        group.count += 1
        if len(group.rows) < SHOWN_ROWS:
            group.rows.append(row)
        if len(group.classes) < 3 or klass in group.classes:
            group.classes[klass] += 1
        if self._writer is not None:
            cells = (file, row, line, column, klass, outcome, released, original or "", fix)
            self._writer.writerow([formula_safe(c) for c in cells])

    def add_row(self, file: str, row: int, line: int, kind: str, *, found: int, expected: int) -> None:
        """Record a row whose cells cannot be matched to the header's columns (:data:`ROW_KINDS`): none
        of its values is released (the row is, with its identifiers, so the hub quarantines it)."""
        if kind == TOO_MANY:
            fix = (
                f"give the row the header's {expected} cells: quote a cell that holds a comma, or delete "
                "the cells past the last column"
            )
        else:
            fix = (
                f"give the row the header's {expected} cells (empty ones too): quote a cell that holds a "
                "line break"
            )
        self.add(
            file,
            row,
            line,
            "",
            kind,
            original=None,
            value_kind=f"{found} cells where the header has {expected}",
            released="",
            outcome=(
                f"its cells cannot be matched to the columns: none of its values released ({INVALID_WORD} in "
                "the kept columns), the hub quarantines the row"
            ),
            fix=fix,
        )

    def note(self, file: str, text: str) -> None:
        """A note on a whole file (its header, its unnamed columns): printed, never a value."""
        if (file, text) not in self.notes:
            self.notes.append((file, text))

    def close(self, *, keep: bool = True) -> None:
        """Finish the vault file (``keep``: rename it into place; else discard it)."""
        if self._handle is None or self.path is None or self._partial is None:
            return
        self._handle.close()
        self._handle = self._writer = None
        if not keep:
            self._partial.unlink(missing_ok=True)
        elif self.path.exists() and filecmp.cmp(self._partial, self.path, shallow=False):
            self._partial.unlink()  # unchanged: the night's file (and its mtime) stays
        else:
            self._partial.replace(self.path)

    def __enter__(self) -> TableReport:
        return self.open()

    def __exit__(self, kind: object, *exc: object) -> None:
        # kept after a refused table too: what was found is true of the rows already released
        with contextlib.suppress(OSError):  # the first error is the one to report
            self.close(keep=True)

    # -- what leaves the site and what is printed: counts, columns, rows and classes, no value ---------
    def counts(self) -> dict[str, Any]:
        """``submission.json``'s ``tables.site_findings``: per file and column, cells by kind."""
        found: dict[str, dict[str, dict[str, int]]] = {}
        rows: dict[str, dict[str, int]] = {}
        for (file, column, kind, _), group in sorted(self.groups.items()):
            if kind in ROW_KINDS:
                shapes = rows.setdefault(file, {})
                shapes[kind] = shapes.get(kind, 0) + group.count
                continue
            cells = found.setdefault(file, {}).setdefault(column, {})
            cells[kind] = cells.get(kind, 0) + group.count
        return {
            "cells": found,
            "rows": rows,
            "withdrawn_rows": dict(sorted(self.withdrawn_rows.items())),
            "merged_rare": dict(sorted(self.merged_rare.items())),
        }

    def to_fix(self) -> int:
        return sum(g.count for (_, _, kind, _), g in self.groups.items() if kind in TO_FIX)

    def lines(self) -> Iterator[str]:
        """The summary ``cohortpool deid`` prints: one line per file, column, kind and fix."""
        # by file, then in the order the findings first appeared (row, then column order)
        for (file, column, kind, _), group in sorted(self.groups.items(), key=lambda item: item[0][0]):
            if kind not in TO_FIX:
                continue
            shown = ", ".join(str(r) for r in group.rows)
            more = f" and {group.count - len(group.rows)} more" if group.count > len(group.rows) else ""
            rows = f"row{'s' if group.count > 1 else ''} {shown}{more}"
            classes = "; ".join(klass for klass, _ in group.classes.most_common(3))
            where = f"{file} {column}, {rows}" if column else f"{file} {rows}"
            yield f"{where} ({classes}): {group.outcome}; fix: {group.fix}"
        for file, text in self.notes:
            yield f"{file}: {text}"
        for file, n in sorted(self.withdrawn_rows.items()):
            yield f"{file}: {n} row(s) of withdrawn patients not released"
        if self.path is not None and self.groups:
            yield f"originals and every row: {self.path}"
