"""The nightly run's bookkeeping, without Prefect: where a run writes, and what it tells the operator.

:class:`RunLayout` names every folder of a run's output directory (one place, so the flows, the CLI,
the tests and the README agree); :mod:`cohortpool.nightly.summary` holds the small, PHI-free records the
Prefect tasks return and turns them into the night's summary, its quarantine table and the exit code.
"""

from cohortpool.nightly.layout import RunLayout
from cohortpool.nightly.summary import (
    LoadSummary,
    NightSummary,
    SiteNightOutcome,
    SubmissionSummary,
    ValidationSummary,
)

__all__ = [
    "LoadSummary",
    "NightSummary",
    "RunLayout",
    "SiteNightOutcome",
    "SubmissionSummary",
    "ValidationSummary",
]
