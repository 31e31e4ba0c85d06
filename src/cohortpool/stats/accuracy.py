"""Diagnostic accuracy of each sign for the target condition, and a multivariable logistic rule.

Proportions (sensitivity, specificity, PPV, NPV, accuracy) get Wilson score 95 % CIs (statsmodels); the
likelihood ratios get the log-method CI of Simel et al. (1991). PPV and NPV are at the *sample* prevalence,
which in a case-control-like registry is not the clinic's: say so when you print them.

The combined rule is a logistic regression of the condition on all signs (statsmodels GLM with frequency
weights, so the warehouse can hand over pattern counts). Its ROC AUC is in-sample (optimistic) and its CI is
DeLong's (1988) on the AUC scale. DeLong is hand-written because neither scipy nor statsmodels has it; the
weighted form lets 10^7 units arrive as a few thousand sign patterns. A unit test checks it against the
Mann-Whitney U identity (AUC = U / (n1 n0)).
"""

from __future__ import annotations

import math
import warnings as _warnings
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

METRICS: tuple[str, ...] = (
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "lr_positive",
    "lr_negative",
    "accuracy",
)


def wilson(successes: int, total: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """Proportion with its Wilson score CI; NaN when the denominator is zero."""
    if total <= 0:
        return math.nan, math.nan, math.nan
    lo, hi = proportion_confint(successes, total, alpha=alpha, method="wilson")
    return successes / total, float(lo), float(hi)


def _lr_ci(ratio: float, se_terms: tuple[float, ...], alpha: float) -> tuple[float, float, float]:
    if not math.isfinite(ratio) or ratio <= 0 or any(x <= 0 for x in se_terms[::2]):
        return ratio, math.nan, math.nan
    var = se_terms[0] ** -1 - se_terms[1] ** -1 + se_terms[2] ** -1 - se_terms[3] ** -1
    z = float(stats.norm.ppf(1 - alpha / 2))
    se = math.sqrt(max(var, 0.0))
    return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)


def diagnostic_accuracy(tp: int, fp: int, fn: int, tn: int, alpha: float = 0.05) -> pd.DataFrame:
    """One row per metric: ``metric, estimate, ci_low, ci_high`` (+ the counts behind it)."""
    pos, neg, n = tp + fn, fp + tn, tp + fp + fn + tn
    rows: dict[str, tuple[float, float, float]] = {
        "sensitivity": wilson(tp, pos, alpha),
        "specificity": wilson(tn, neg, alpha),
        "ppv": wilson(tp, tp + fp, alpha),
        "npv": wilson(tn, tn + fn, alpha),
    }
    sens, spec = rows["sensitivity"][0], rows["specificity"][0]
    lr_pos = sens / (1 - spec) if spec < 1 else math.inf
    lr_neg = (1 - sens) / spec if spec > 0 else math.inf
    rows["lr_positive"] = _lr_ci(lr_pos, (tp, pos, fp, neg), alpha)
    rows["lr_negative"] = _lr_ci(lr_neg, (fn, pos, tn, neg), alpha)
    rows["accuracy"] = wilson(tp + tn, n, alpha)
    return pd.DataFrame(
        [
            {"metric": m, "estimate": e, "ci_low": lo, "ci_high": hi, "tp": tp, "fp": fp, "fn": fn, "tn": tn}
            for m, (e, lo, hi) in rows.items()
        ]
    )


def weighted_auc_delong(
    scores: npt.ArrayLike, labels: npt.ArrayLike, weights: npt.ArrayLike | None = None, alpha: float = 0.05
) -> tuple[float, float, float, float]:
    """AUC, its DeLong SE and CI; ``weights`` are frequency weights (units per row)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels).astype(bool)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=float)
    sp, wp = s[y], w[y]
    sn, wn = s[~y], w[~y]
    n_pos, n_neg = wp.sum(), wn.sum()
    if n_pos == 0 or n_neg == 0:
        return math.nan, math.nan, math.nan, math.nan
    order = np.argsort(sn, kind="stable")
    sn_sorted, cw = sn[order], np.concatenate([[0.0], np.cumsum(wn[order])])
    below = cw[np.searchsorted(sn_sorted, sp, side="left")]
    equal = cw[np.searchsorted(sn_sorted, sp, side="right")] - below
    v10 = (below + 0.5 * equal) / n_neg  # per positive: share of negatives it outranks
    order_p = np.argsort(sp, kind="stable")
    sp_sorted, cwp = sp[order_p], np.concatenate([[0.0], np.cumsum(wp[order_p])])
    above = n_pos - cwp[np.searchsorted(sp_sorted, sn, side="right")]
    eq_p = (
        cwp[np.searchsorted(sp_sorted, sn, side="right")] - cwp[np.searchsorted(sp_sorted, sn, side="left")]
    )
    v01 = (above + 0.5 * eq_p) / n_pos  # per negative: share of positives that outrank it
    auc = float((wp * v10).sum() / n_pos)
    if n_pos < 2 or n_neg < 2:
        return auc, math.nan, math.nan, math.nan
    s10 = float((wp * (v10 - auc) ** 2).sum() / (n_pos - 1))
    s01 = float((wn * (v01 - auc) ** 2).sum() / (n_neg - 1))
    se = math.sqrt(s10 / n_pos + s01 / n_neg)
    z = float(stats.norm.ppf(1 - alpha / 2))
    return auc, se, max(0.0, auc - z * se), min(1.0, auc + z * se)


@dataclass(frozen=True)
class LogisticRule:
    """The fitted combined rule."""

    coefficients: pd.DataFrame  # term, coef, se, p_value, odds_ratio
    auc: float
    auc_se: float
    auc_ci_low: float
    auc_ci_high: float
    n: int
    warnings: tuple[str, ...] = field(default=())


def logistic_rule(
    frame: pd.DataFrame, signs: list[str], outcome: str, weight: str | None = None, alpha: float = 0.05
) -> LogisticRule:
    """Logistic regression of ``outcome`` (bool) on the ``signs`` (bool), then its ROC AUC with DeLong CI.

    Signs that never vary are left out (no information, and they make the design singular). Under complete
    or quasi-complete separation (common with pathognomonic signs) the maximum-likelihood coefficients do not
    exist; the model is then refitted with a small ridge penalty, which keeps the ranking (and so the AUC)
    meaningful, and the coefficients are reported without SEs.
    """
    warnings: list[str] = []
    w = frame[weight].to_numpy(dtype=float) if weight else np.ones(len(frame))
    used = [s for s in signs if frame[s].astype(bool).nunique() > 1]
    dropped = sorted(set(signs) - set(used))
    if dropped:
        warnings.append(f"constant signs left out of the model: {', '.join(dropped)}")
    y = frame[outcome].astype(bool).to_numpy().astype(float)
    x = sm.add_constant(frame[used].astype(bool).astype(float).to_numpy(), has_constant="add")
    terms = ["const", *used]
    model = sm.GLM(y, x, family=sm.families.Binomial(), freq_weights=w)
    separated = False
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        try:
            fit = model.fit()
            params, bse, pvals = fit.params, fit.bse, fit.pvalues
            separated = any("separation" in str(c.message).lower() for c in caught) or bool(
                np.any(np.abs(params) > 15) or not np.all(np.isfinite(bse))
            )
        except Exception:  # statsmodels raises on perfect separation in some versions
            separated = True
    if separated:
        warnings.append("separation: coefficients from a ridge-penalised fit (alpha 0.01), no SEs")
        fit_r = model.fit_regularized(alpha=0.01, L1_wt=0.0)
        params = np.asarray(fit_r.params)
        bse = pvals = np.full(len(terms), math.nan)
    scores = x @ np.asarray(params)
    auc, se, lo, hi = weighted_auc_delong(scores, y.astype(bool), w, alpha)
    coef = pd.DataFrame(
        {
            "term": terms,
            "coef": np.asarray(params, dtype=float),
            "se": np.asarray(bse, dtype=float),
            "p_value": np.asarray(pvals, dtype=float),
        }
    )
    coef["odds_ratio"] = np.exp(coef["coef"])
    warnings.append("AUC is in-sample (optimistic); vertebrae of one patient are not independent")
    return LogisticRule(coef, auc, se, lo, hi, int(w.sum()), tuple(warnings))
