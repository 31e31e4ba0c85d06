"""Hub-side validation: reviewed GX suites, cross-table and distribution checks, row-level quarantine.

The stage's API is :class:`Validator` (built once per process: suites, GX, the DuckDB engine) with its
:meth:`Validator.validate_submission` (one submission -> one validated batch), the shortcut
:func:`validate_submission` (the same with this process's Validator), and
:func:`cohortpool.validate.distribution.compare_sites` (every site's accepted rows -> warnings).

The names are imported on first use (PEP 562), not with the package: a process that only finishes a
staged batch (:mod:`cohortpool.validate.handover`) imports its modules without the row checks and DuckDB
(issue 16 item 2).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cohortpool.validate.batch import Validator, process_validator, validate_submission
    from cohortpool.validate.outcome import ValidationOutcome
    from cohortpool.validate.submission import SubmissionError

_WHERE = {
    "SubmissionError": "cohortpool.validate.submission",
    "ValidationOutcome": "cohortpool.validate.outcome",
    "Validator": "cohortpool.validate.batch",
    "process_validator": "cohortpool.validate.batch",
    "validate_submission": "cohortpool.validate.batch",
}

__all__ = ["SubmissionError", "ValidationOutcome", "Validator", "process_validator", "validate_submission"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
