"""Pooling across sites: the site is a stratum, never just more rows.

* Cochran-Mantel-Haenszel test of conditional independence for K 2 x 2 tables, as R's ``mantelhaen.test``
  computes it (continuity correction 0.5 applied only when |sum(a - E[a])| >= 0.5). Hand-written because
  statsmodels' ``StratifiedTable.test_null_odds(correction=True)`` subtracts 0.5 unconditionally, which turns
  a deviation of 0.2 into -0.3 and *inflates* the statistic after squaring.
* Mantel-Haenszel pooled OR and the Robins-Breslow-Greenland 95 % CI: statsmodels (agrees with R).
* Breslow-Day test of homogeneous ORs with Tarone's correction. Hand-written because statsmodels divides
  by (1 - OR_MH) when solving for the expected cell, so it returns NaN when the pooled OR is exactly 1 (the
  quadratic degenerates to a linear equation, e = r1 c1 / n).
* DerSimonian-Laird random effects (mean differences, log ORs) with tau^2 truncated at 0 and I^2.
  Hand-written because statsmodels' ``combine_effects(method_re="dl")`` leaves tau^2 negative when Q < df,
  which gives the random-effects weights the wrong sign of correction (metafor and the DL paper truncate).

Every 2 x 2 stratum is oriented [[ref absent, ref present], [other absent, other present]], so OR > 1 means
"more frequent in the second group".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import stats
from statsmodels.stats.contingency_tables import StratifiedTable


@dataclass(frozen=True)
class CMHResult:
    """CMH test, MH odds ratio with CI, and Breslow-Day-Tarone homogeneity."""

    statistic: float
    df: float
    p_value: float
    odds_ratio: float
    ci_low: float
    ci_high: float
    breslow_day: float
    breslow_day_df: float
    breslow_day_p: float
    strata_used: int
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class MetaResult:
    """DerSimonian-Laird random-effects pooled estimate (on the analysis scale, e.g. log OR)."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    tau2: float
    i2: float
    q: float
    q_df: int
    q_p: float
    weights: tuple[float, ...]  # percent, per input study, random-effects weights
    fixed_estimate: float
    warnings: tuple[str, ...] = field(default=())


def _strata(tables: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(tables, dtype=float)
    if arr.ndim != 3 or arr.shape[1:] != (2, 2):
        raise ValueError(f"strata must be K x 2 x 2, got shape {arr.shape}")
    if (arr < 0).any():
        raise ValueError("stratum counts must be non-negative")
    return arr


def cmh_test(tables: npt.ArrayLike, *, correct: bool = True) -> tuple[float, float]:
    """CMH chi-square (df 1) and P exactly as R's ``mantelhaen.test`` (2 x 2 x K, exact = FALSE)."""
    arr = _strata(tables)
    n = arr.sum(axis=(1, 2))
    r1, r2 = arr[:, 0, :].sum(axis=1), arr[:, 1, :].sum(axis=1)
    c1, c2 = arr[:, :, 0].sum(axis=1), arr[:, :, 1].sum(axis=1)
    delta = float((arr[:, 0, 0] - r1 * c1 / n).sum())
    var = float((r1 * r2 * c1 * c2 / (n**2 * (n - 1))).sum())
    yates = 0.5 if correct and abs(delta) >= 0.5 else 0.0
    if var <= 0:
        return math.nan, math.nan
    stat = (abs(delta) - yates) ** 2 / var
    return stat, float(stats.chi2.sf(stat, 1))


def _expected_a(psi: float, r1: float, c1: float, n: float) -> float:
    """The cell a of a stratum with these margins whose odds ratio equals ``psi``."""
    lo, hi = max(0.0, r1 + c1 - n), min(r1, c1)
    if psi == 1.0:
        return r1 * c1 / n
    qa = 1.0 - psi
    qb = n - r1 - c1 + psi * (r1 + c1)
    qc = -psi * r1 * c1
    disc = math.sqrt(max(qb * qb - 4 * qa * qc, 0.0))
    for root in ((-qb + disc) / (2 * qa), (-qb - disc) / (2 * qa)):
        if lo - 1e-9 <= root <= hi + 1e-9:
            return root
    raise ArithmeticError("no admissible root for the Breslow-Day expected count")


def breslow_day_tarone(tables: npt.ArrayLike, pooled_or: float) -> tuple[float, float, float]:
    """Breslow-Day statistic with Tarone's correction, its df (K - 1) and P (Tarone 1985)."""
    arr = _strata(tables)
    obs, exp, var = [], [], []
    for s in arr:
        n = s.sum()
        r1, c1 = s[0].sum(), s[:, 0].sum()
        e = _expected_a(pooled_or, r1, c1, n)
        cells = (e, r1 - e, c1 - e, n - r1 - c1 + e)
        if min(cells) <= 0:
            continue  # a fixed margin: this stratum carries no information on heterogeneity
        obs.append(s[0, 0])
        exp.append(e)
        var.append(1.0 / sum(1.0 / x for x in cells))
    k = len(obs)
    if k < 2:
        return math.nan, math.nan, math.nan
    o, e_, v = np.array(obs), np.array(exp), np.array(var)
    stat = float(((o - e_) ** 2 / v).sum() - (o.sum() - e_.sum()) ** 2 / v.sum())
    return stat, float(k - 1), float(stats.chi2.sf(stat, k - 1))


def cmh(tables: npt.ArrayLike, *, correct: bool = True, alpha: float = 0.05) -> CMHResult:
    """The full stratified analysis of K 2 x 2 tables (strata with fewer than 2 units are dropped, as R
    refuses them)."""
    arr = _strata(tables)
    warnings: list[str] = []
    keep = arr.sum(axis=(1, 2)) >= 2
    if not keep.all():
        warnings.append(f"{int((~keep).sum())} stratum(s) with fewer than 2 units dropped")
    arr = arr[keep]
    nan = math.nan
    if len(arr) == 0:
        return CMHResult(nan, nan, nan, nan, nan, nan, nan, nan, nan, 0, ("no usable stratum",))
    stat, p = cmh_test(arr, correct=correct)
    st = StratifiedTable([s for s in arr])
    num = float((arr[:, 0, 0] * arr[:, 1, 1] / arr.sum(axis=(1, 2))).sum())
    den = float((arr[:, 0, 1] * arr[:, 1, 0] / arr.sum(axis=(1, 2))).sum())
    if num > 0 and den > 0:
        or_ = float(st.oddsratio_pooled)
        lo, hi = (float(x) for x in st.oddsratio_pooled_confint(alpha=alpha))
        bd, bd_df, bd_p = breslow_day_tarone(arr, or_)
    else:
        or_ = 0.0 if num == 0 and den > 0 else (math.inf if den == 0 and num > 0 else nan)
        warnings.append(
            "Mantel-Haenszel OR undefined (0/0: both cross-products are zero in every stratum)"
            if math.isnan(or_)
            else "Mantel-Haenszel OR is 0 or infinite (a zero in every stratum): no CI, no Breslow-Day"
        )
        lo = hi = bd = bd_df = bd_p = nan
    if math.isnan(stat):
        warnings.append("no stratum has variation in both margins: CMH undefined")
    return CMHResult(stat, 1.0, p, or_, lo, hi, bd, bd_df, bd_p, len(arr), tuple(warnings))


#: why a DerSimonian-Laird pooling has no result (every site lacks an estimate or a positive variance)
NOTHING_TO_POOL = "no site with an estimate and a positive variance to pool"


def dersimonian_laird(effects: npt.ArrayLike, variances: npt.ArrayLike, alpha: float = 0.05) -> MetaResult:
    """DerSimonian-Laird pooling: tau^2 = max(0, (Q - df) / C), I^2 = max(0, (Q - df) / Q)."""
    y = np.asarray(effects, dtype=float)
    v = np.asarray(variances, dtype=float)
    if y.shape != v.shape or y.ndim != 1:
        raise ValueError("effects and variances must be 1-D of the same length")
    ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
    warnings: list[str] = []
    if not ok.all():
        warnings.append(f"{int((~ok).sum())} study(ies) without a finite estimate and variance left out")
    weights_pct = np.zeros(len(y))
    y, v = y[ok], v[ok]
    nan = math.nan
    if len(y) == 0:
        return MetaResult(
            nan, nan, nan, nan, nan, nan, nan, nan, 0, nan, tuple(weights_pct), nan, (NOTHING_TO_POOL,)
        )
    w = 1.0 / v
    fixed = float((w * y).sum() / w.sum())
    q = float((w * (y - fixed) ** 2).sum())
    df = len(y) - 1
    c = float(w.sum() - (w**2).sum() / w.sum())
    tau2 = max(0.0, (q - df) / c) if df > 0 and c > 0 else 0.0
    w_re = 1.0 / (v + tau2)
    est = float((w_re * y).sum() / w_re.sum())
    se = math.sqrt(1.0 / float(w_re.sum()))
    z = float(stats.norm.ppf(1 - alpha / 2))
    i2 = max(0.0, (q - df) / q) * 100.0 if df > 0 and q > 0 else (0.0 if df > 0 else nan)
    weights_pct[ok] = 100.0 * w_re / w_re.sum()
    return MetaResult(
        estimate=est,
        se=se,
        ci_low=est - z * se,
        ci_high=est + z * se,
        p_value=float(2 * stats.norm.sf(abs(est / se))),
        tau2=tau2,
        i2=i2,
        q=q,
        q_df=df,
        q_p=float(stats.chi2.sf(q, df)) if df > 0 else nan,
        weights=tuple(float(x) for x in weights_pct),
        fixed_estimate=fixed,
        warnings=tuple(warnings),
    )


def log_odds_ratio(table: npt.ArrayLike) -> tuple[float, float, bool]:
    """Log sample OR of one stratum and its Woolf variance; 0.5 added to every cell if any is zero.

    Strata with no event or no non-event in both groups (a whole column zero) carry no information on the OR
    and return NaN, as metafor's ``escalc(drop00 = TRUE)`` would.
    """
    s = np.asarray(table, dtype=float)
    if (s.sum(axis=0) == 0).any() or (s.sum(axis=1) == 0).any():
        return math.nan, math.nan, False
    corrected = bool((s == 0).any())
    if corrected:
        s = s + 0.5
    (a, b), (c, d) = s
    return math.log(a * d / (b * c)), 1 / a + 1 / b + 1 / c + 1 / d, corrected


def mean_difference(
    n1: int, mean1: float, sd1: float, n2: int, mean2: float, sd2: float
) -> tuple[float, float]:
    """Mean difference (second - first) and its variance sd1^2/n1 + sd2^2/n2 (metafor's "MD")."""
    if n1 < 2 or n2 < 2:
        return math.nan, math.nan
    return mean2 - mean1, sd1**2 / n1 + sd2**2 / n2
