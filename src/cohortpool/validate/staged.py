"""A validated batch in its staging folder, all but its Data Docs, and its last step (the pages, then the
folder put in place).

Its own module, importing neither the row checks nor DuckDB: the process that finishes a batch
:mod:`cohortpool.validate.handover` passed to it imports this and GX, nothing of the validation it
replaced (issue 16 item 2).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cohortpool.validate.docs import GxPages, write_data_docs
from cohortpool.validate.outcome import ValidationOutcome
from cohortpool.validate.results import HalfResult
from cohortpool.validate.suites import TableSuite


@dataclass
class StagedBatch:
    """A batch written to its staging folder but for its Data Docs, with what they are made from: the
    summary, the outcome, each table's results by half (``text``/``typed``) and the suites."""

    staging: Path
    summary: dict[str, Any]
    outcome: ValidationOutcome
    results: dict[str, dict[str, HalfResult]]
    suites: dict[str, TableSuite]

    def finish(self, pages: GxPages | None = None) -> ValidationOutcome:
        """Write the Data Docs, then put the batch in place (its staging folder renamed to ``out_dir``).

        GX's pages are the last thing written, once the scratch database is closed: GX is imported only
        there, and a process holding both peaked 140 MB higher (issue 16 item 2).
        """
        write_data_docs(
            self.staging / "data_docs", self.summary, self.outcome, self.results, self.suites, pages
        )
        out_dir = self.outcome.out_dir
        if out_dir.exists():
            shutil.rmtree(out_dir)
        self.staging.rename(out_dir)
        return self.outcome
