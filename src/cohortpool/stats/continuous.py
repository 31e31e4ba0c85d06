"""Two-group comparison of a continuous variable, reported the way SPSS's Independent-Samples T Test is.

Student's equal-variance t is the headline (the paper's choice: its printed P values match Student, not
Welch); Levene's test (mean-centred, as SPSS computes it; scipy's default is the median-centred
Brown-Forsythe variant) and Welch's t are reported beside it so a reader can see when the equal-variance
assumption is doubtful. Mann-Whitney U with median (IQR) is the headline for variables the plan declares
non-normal. Direction throughout: second group minus first (reference) group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from cohortpool.stats import tests as t

#: quantile definition for median and IQR: SPSS's default (HAVERAGE, Hyndman-Fan type 6)
QUANTILE_METHOD: Literal["weibull"] = "weibull"


@dataclass(frozen=True)
class GroupSummary:
    """Descriptive statistics of one group."""

    n: int
    mean: float
    sd: float
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class ContinuousResult:
    """Every statistic of one continuous comparison; test, statistic, df, p_value: the headline."""

    test: str
    statistic: float
    df: float
    p_value: float
    summaries: tuple[GroupSummary, GroupSummary]
    mean_difference: float
    md_ci_low: float
    md_ci_high: float
    student_t: float
    student_df: float
    student_p: float
    welch_t: float
    welch_df: float
    welch_p: float
    levene_f: float
    levene_p: float
    mann_whitney_u: float
    mann_whitney_p: float
    warnings: tuple[str, ...] = field(default=())


def summarize(values: npt.ArrayLike) -> GroupSummary:
    """n, mean, SD (n - 1), median, quartiles (SPSS definition), range; NaNs are dropped first."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return GroupSummary(0, *([math.nan] * 7))
    q1, med, q3 = np.quantile(x, np.array([0.25, 0.5, 0.75]), method=QUANTILE_METHOD)
    sd = float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    return GroupSummary(
        int(x.size), float(x.mean()), sd, float(med), float(q1), float(q3), float(x.min()), float(x.max())
    )


def mann_whitney(first: npt.ArrayLike, second: npt.ArrayLike) -> tuple[float, float]:
    """U of the second group and its two-sided P: normal approximation with tie correction, no continuity
    correction (SPSS's "Asymp. Sig."; R's ``wilcox.test(exact = FALSE, correct = FALSE)``)."""
    a = np.asarray(second, dtype=float)
    b = np.asarray(first, dtype=float)
    res = stats.mannwhitneyu(a, b, use_continuity=False, method="asymptotic")
    return float(res.statistic), float(res.pvalue)


def compare_continuous(
    first: npt.ArrayLike, second: npt.ArrayLike, *, normal: bool = True, alpha: float = 0.05
) -> ContinuousResult:
    """Compare two groups (reference first) on a continuous variable."""
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    s1, s2 = summarize(a), summarize(b)
    warnings: list[str] = []
    nan = math.nan
    if a.size < 2 or b.size < 2:
        warnings.append("fewer than 2 values in a group: no test")
        return ContinuousResult(
            t.choose_continuous_test(normal), nan, nan, nan, (s1, s2), nan, nan, nan,
            nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, tuple(warnings),
        )  # fmt: skip
    student = stats.ttest_ind(b, a, equal_var=True)
    welch = stats.ttest_ind(b, a, equal_var=False)
    if np.ptp(np.concatenate([a, b])) == 0:
        warnings.append("all values equal: Levene's test undefined")
        lev_f, lev_p = nan, nan
    else:
        lev = stats.levene(a, b, center="mean")
        lev_f, lev_p = float(lev.statistic), float(lev.pvalue)
        if lev_p < alpha:
            warnings.append(f"Levene P < {alpha}: variances differ, see Welch's t")
    u, u_p = mann_whitney(a, b)
    ci = student.confidence_interval(confidence_level=1 - alpha)
    sdf = float(student.df)
    headline = t.choose_continuous_test(normal)
    if headline == t.STUDENT_T:
        stat, df, p = float(student.statistic), sdf, float(student.pvalue)
    else:
        stat, df, p = u, nan, u_p
    return ContinuousResult(
        test=headline,
        statistic=stat,
        df=df,
        p_value=p,
        summaries=(s1, s2),
        mean_difference=s2.mean - s1.mean,
        md_ci_low=float(ci.low),
        md_ci_high=float(ci.high),
        student_t=float(student.statistic),
        student_df=sdf,
        student_p=float(student.pvalue),
        welch_t=float(welch.statistic),
        welch_df=float(welch.df),
        welch_p=float(welch.pvalue),
        levene_f=lev_f,
        levene_p=lev_p,
        mann_whitney_u=u,
        mann_whitney_p=u_p,
        warnings=tuple(warnings),
    )
