"""What a check says about a row (or a whole table): the common currency of the validation stage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One failed check on one row (``position`` is the 0-based row of the table) or on the whole table.

    ``columns`` name the cells whose submitted values are reported; ``duplicates`` carries the suite's
    duplicate policy for uniqueness checks. Slotted: a night can have a finding per row (10^6 reads
    without a matching study), and a ``__dict__`` per finding doubled their memory (issue 16 item 2).
    """

    table: str
    position: int | None
    expectation: str
    severity: str
    reason: str
    columns: tuple[str, ...] = ()
    duplicates: str | None = None
    #: for a table-level finding: what to report as the offending value (e.g. unexpected column names)
    value: str = ""


@dataclass(frozen=True)
class RowFindings:
    """One failed check on many rows: their positions (ascending) instead of a :class:`Finding` each.

    Why: a night can fail a check on every row, and 10^6 findings as objects held about 100 MB before
    anything was done with them; as positions they hold 8 MB (issue 16 item 2). The table of a night
    read in chunks is judged chunk by chunk from these (:mod:`cohortpool.validate.chunks`); a table
    validated whole expands them (:func:`expand`).
    """

    table: str
    expectation: str
    severity: str
    reason: str
    columns: tuple[str, ...]
    duplicates: str | None
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.positions)

    def __iter__(self) -> Iterator[Finding]:
        for position in self.positions.tolist():
            yield Finding(
                self.table,
                position,
                self.expectation,
                self.severity,
                self.reason,
                self.columns,
                self.duplicates,
            )


#: what a check reports: a finding on the table or one row, or one check's findings on many rows
Found = Finding | RowFindings


def expand(found: Iterable[Found]) -> list[Finding]:
    """Every finding as a :class:`Finding`, in order (a table validated whole is judged from these)."""
    out: list[Finding] = []
    for item in found:
        if isinstance(item, RowFindings):
            out.extend(item)
        else:
            out.append(item)
    return out


@dataclass
class CheckOutcome:
    """One expectation's outcome on one table, for the summary and the QC page (counts only)."""

    table: str
    expectation: str
    severity: str
    reason: str
    success: bool
    unexpected_count: int
    errored: str | None = None
    applies_to: str = "typed"
    sample: list[str] = field(default_factory=list)
