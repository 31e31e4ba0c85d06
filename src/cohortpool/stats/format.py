"""Numbers printed the way the reference paper (and SPSS users) print them."""

from __future__ import annotations

import math


def format_p(p: float | None) -> str:
    """A P value with three decimals, ``< 0.001`` below that, empty when undefined.

    Rounding is half-up on the decimal value, so 0.0005 prints 0.001 and not 0.000 (which would read as
    "P = 0"); anything that would round to 0.000 is printed ``< 0.001`` instead.
    """
    if p is None or not math.isfinite(p):
        return ""
    if p < 0.001:
        return "< 0.001"
    if p >= 1.0:
        return "1.000"
    return f"{math.floor(p * 1000 + 0.5) / 1000:.3f}"


#: from this magnitude on a number prints in scientific notation (fixed decimals would print 300 digits)
SCIENTIFIC_FROM = 1e15
#: a summary of a group without values (words: a leading "-" would be formula-escaped in the CSVs)
NO_VALUES = "no values"


def format_number(value: float | None, decimals: int = 2) -> str:
    """A fixed-decimal number (scientific from 10^15 on), empty when undefined."""
    if value is None or not math.isfinite(value):
        return ""
    if abs(value) >= SCIENTIFIC_FROM:
        return f"{value:.{decimals}e}"
    return f"{value:.{decimals}f}"


def mean_sd(mean: float, sd: float, decimals: int = 2) -> str:
    """``mean ± SD`` as in the paper's Table 1; the mean alone when the SD is undefined (one value);
    ``no values`` when the group has none."""
    if mean is None or not math.isfinite(mean):
        return NO_VALUES
    if sd is None or not math.isfinite(sd):
        return format_number(mean, decimals)
    return f"{format_number(mean, decimals)} ± {format_number(sd, decimals)}"


def median_iqr(median: float, q1: float, q3: float, decimals: int = 2) -> str:
    """``median (Q1-Q3)`` for variables the plan declares non-normal; ``no values`` for an empty group."""
    if median is None or not math.isfinite(median):
        return NO_VALUES
    return f"{format_number(median, decimals)} ({format_number(q1, decimals)}-{format_number(q3, decimals)})"


def count_percent(count: int, total: int, decimals: int = 2) -> str:
    """``n (%)`` with the percentage of the group total."""
    if total <= 0:
        return NO_VALUES
    return f"{count} ({100.0 * count / total:.{decimals}f})"
