"""Statistics: test selection, group comparisons, paired and multi-site methods, accuracy.

Functions here take DataFrames or counts, never a database connection: the glue layer fetches the
analysis views from the warehouse and hands them over.
"""

from __future__ import annotations

from cohortpool.stats.result import ResultTable

__all__ = ["ResultTable"]
