"""Two-group comparison of a continuous variable, reported the way SPSS's Independent-Samples T Test is.

Student's equal-variance t is the headline (the paper's choice: its printed P values match Student, not
Welch); Levene's test (mean-centred, as SPSS computes it; scipy's default is the median-centred
Brown-Forsythe variant) and Welch's t are reported beside it so a reader can see when the equal-variance
assumption is doubtful. Mann-Whitney U with median (IQR) is the headline for variables the plan declares
non-normal. Direction throughout: second group minus first (reference) group.
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

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


def _scaled(moment: Callable[..., Any], x: npt.NDArray[np.float64], **kwargs: Any) -> float:
    """``moment(x)``, or ``max|x| * moment(x / max|x|)`` when that overflows (values near the float limit,
    whose mean and SD are finite numbers all the same)."""
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(moment(x, **kwargs))
        if math.isfinite(value):
            return value
        top = float(np.abs(x).max())
        return top * float(moment(x / top, **kwargs))


def summarize(values: npt.ArrayLike) -> GroupSummary:
    """n, mean, SD (n - 1), median, quartiles (SPSS definition), range; NaNs are dropped first."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return GroupSummary(0, *([math.nan] * 7))
    q1, med, q3 = np.quantile(x, np.array([0.25, 0.5, 0.75]), method=QUANTILE_METHOD)
    # a constant sample's SD is 0, not the rounding noise of its mean (0.001 x 30 gives SD 2e-19)
    sd = (0.0 if x.min() == x.max() else _scaled(np.std, x, ddof=1)) if x.size > 1 else math.nan
    mean = _scaled(np.mean, x)
    return GroupSummary(
        int(x.size), mean, sd, float(med), float(q1), float(q3), float(x.min()), float(x.max())
    )


def mann_whitney(first: npt.ArrayLike, second: npt.ArrayLike) -> tuple[float, float]:
    """U of the second group and its two-sided P: normal approximation with tie correction, no continuity
    correction (SPSS's "Asymp. Sig."; R's ``wilcox.test(exact = FALSE, correct = FALSE)``)."""
    a = np.asarray(second, dtype=float)
    b = np.asarray(first, dtype=float)
    res = stats.mannwhitneyu(a, b, use_continuity=False, method="asymptotic")
    return float(res.statistic), float(res.pvalue)


def _why_t_undefined(s1: GroupSummary, s2: GroupSummary) -> str | None:
    """Why the two-sample t cannot be computed, or None when it can: no variation within either group
    (R's ``t.test`` stops with "data are essentially constant" when the standard error is at most 10
    machine epsilons of the larger mean; SPSS prints no t when both SDs are 0), or values so large that
    the standard error overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        sd1, sd2 = np.float64(s1.sd), np.float64(s2.sd)
        pooled = ((s1.n - 1) * sd1**2 + (s2.n - 1) * sd2**2) / (s1.n + s2.n - 2)
        se = float(np.sqrt(pooled * (1 / s1.n + 1 / s2.n)))
    scale = max(abs(s1.mean), abs(s2.mean))
    if not (math.isfinite(se) and math.isfinite(scale)):
        return "values too large to compute"
    if se <= 10 * np.finfo(float).eps * scale:
        return "no variation within either group"
    return None


def _deviations_vary(first: npt.NDArray[np.float64], second: npt.NDArray[np.float64]) -> bool:
    """Whether Levene's ANOVA of absolute deviations from the group means has a within-group variance
    (above rounding: 100 machine epsilons squared of the deviations' sum of squares)."""
    d = [np.abs(x - x.mean()) for x in (first, second)]
    within = sum(float(((x - x.mean()) ** 2).sum()) for x in d)
    total = sum(float((x**2).sum()) for x in d)
    return bool(within > (100 * np.finfo(float).eps) ** 2 * total)


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
    headline = t.choose_continuous_test(normal)
    why = _why_t_undefined(s1, s2)
    if why is not None:
        warnings.append(f"not estimable: {why} (t and Levene undefined)")
        u, u_p = mann_whitney(a, b)  # ranks: defined whenever the groups are not all tied
        stat, df, p = (nan, nan, nan) if headline == t.STUDENT_T else (u, nan, u_p)
        return ContinuousResult(
            headline, stat, df, p, (s1, s2), s2.mean - s1.mean, nan, nan,
            nan, nan, nan, nan, nan, nan, nan, nan, u, u_p, tuple(warnings),
        )  # fmt: skip
    with _warnings.catch_warnings():
        # scipy's "precision loss ... nearly identical" for a constant group: the t is exact all the same
        _warnings.simplefilter("ignore", RuntimeWarning)
        student = stats.ttest_ind(b, a, equal_var=True)
        welch = stats.ttest_ind(b, a, equal_var=False)
    if _deviations_vary(a, b):
        lev = stats.levene(a, b, center="mean")
        lev_f, lev_p = float(lev.statistic), float(lev.pvalue)
        if lev_p < alpha:
            warnings.append(f"Levene P < {alpha}: variances differ, see Welch's t")
    else:
        # e.g. two values a group: both lie equally far from their mean, so Levene's F divides by 0 (R's
        # anova prints an F of 1e31 and "essentially perfect fit"; scipy an infinite F with P = 0)
        warnings.append("Levene's test not estimable: absolute deviations do not vary within the groups")
        lev_f, lev_p = nan, nan
    u, u_p = mann_whitney(a, b)
    ci = student.confidence_interval(confidence_level=1 - alpha)
    sdf = float(student.df)
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
