"""Hub-side validation: reviewed GX suites, cross-table and distribution checks, row-level quarantine.

The stage's API is :func:`validate_submission` (one submission -> one validated batch) and
:func:`cohortpool.validate.distribution.compare_sites` (every site's accepted rows -> warnings).
"""

from cohortpool.validate.batch import validate_submission
from cohortpool.validate.outcome import ValidationOutcome
from cohortpool.validate.submission import SubmissionError

__all__ = ["SubmissionError", "ValidationOutcome", "validate_submission"]
