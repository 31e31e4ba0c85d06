"""What validating one submission produced: per-table counts and the outcome the caller reads.

These records live apart from :mod:`cohortpool.validate.batch` (which writes them) so that
:mod:`cohortpool.validate.docs` (which renders them) can import them without importing the batch writer:
the two modules used to import each other for these types alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cohortpool.validate.findings import CheckOutcome


@dataclass
class TableSummary:
    """Counts of one table (``summary.json``)."""

    file: str
    source_sha256: str | None
    rows_in: int
    accepted: int
    quarantined: int
    warnings: int
    rejected: str | None


@dataclass
class ValidationOutcome:
    """What :func:`cohortpool.validate.validate_submission` wrote and found."""

    out_dir: Path
    site_id: str
    night: str
    batch_id: str
    tables: dict[str, TableSummary]
    checks: list[CheckOutcome] = field(default_factory=list)
    #: withdrawn.csv: pseudonyms passed into the batch, and rows quarantined (None: no such file)
    withdrawn: tuple[int, int] | None = None
    #: files that are not what submission.json lists (changed after packaging), with what is wrong
    changed: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        refused = self.withdrawn is not None and self.withdrawn[1] > 0
        return not refused and all(t.quarantined == 0 and t.rejected is None for t in self.tables.values())

    @property
    def exit_code(self) -> int:
        """0 when every row passed, 1 when anything was quarantined or rejected (warnings do not count)."""
        return 0 if self.passed else 1

    @property
    def data_docs(self) -> Path:
        return self.out_dir / "data_docs" / "index.html"
