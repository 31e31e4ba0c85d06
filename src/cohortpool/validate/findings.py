"""What a check says about a row (or a whole table): the common currency of the validation stage."""

from __future__ import annotations

from dataclasses import dataclass, field

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
