"""Hub-side validation: reviewed GX suites, cross-table and distribution checks, row-level quarantine.

The stage's API is :class:`Validator` (built once per process: suites, GX, the DuckDB engine) with its
:meth:`Validator.validate_submission` (one submission -> one validated batch), the shortcut
:func:`validate_submission` (the same with this process's Validator), and
:func:`cohortpool.validate.distribution.compare_sites` (every site's accepted rows -> warnings).
"""

from cohortpool.validate.batch import Validator, process_validator, validate_submission
from cohortpool.validate.outcome import ValidationOutcome
from cohortpool.validate.submission import SubmissionError

__all__ = ["SubmissionError", "ValidationOutcome", "Validator", "process_validator", "validate_submission"]
