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
from scipy import optimize, stats
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


def _ratio(numerator: float, denominator: float) -> float:
    """A likelihood ratio: infinite when only its denominator is 0, undefined (NaN) when both are (0/0, e.g.
    LR- of a sign seen in every unit of both groups) or when either is (a group without units)."""
    if math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    if denominator == 0:
        return math.inf if numerator > 0 else math.nan
    return numerator / denominator


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
    lr_pos = _ratio(sens, 1 - spec)
    lr_neg = _ratio(1 - sens, spec)
    rows["lr_positive"] = _lr_ci(lr_pos, (tp, pos, fp, neg), alpha)
    rows["lr_negative"] = _lr_ci(lr_neg, (fn, pos, tn, neg), alpha)
    rows["accuracy"] = wilson(tp + tn, n, alpha)
    # why a metric has no estimate (the report prints "not estimable: <why>"; zeros are never hidden)
    why = {
        "sensitivity": "no positive units" if pos == 0 else "",
        "specificity": "no negative units" if neg == 0 else "",
        "ppv": "no unit shows the sign" if tp + fp == 0 else "",
        "npv": "every unit shows the sign" if tn + fn == 0 else "",
        "accuracy": "no units" if n == 0 else "",
    }
    for ratio in ("lr_positive", "lr_negative"):
        if math.isnan(rows[ratio][0]):
            why[ratio] = why["sensitivity"] or why["specificity"] or "0/0"
    if math.isinf(rows["lr_positive"][0]):
        why["lr_positive"] = "infinite: no false positives"
    if math.isinf(rows["lr_negative"][0]):
        why["lr_negative"] = "infinite: no true negatives"
    return pd.DataFrame(
        [
            {"metric": m, "estimate": e, "ci_low": lo, "ci_high": hi, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
             "note": why.get(m, "")}
            for m, (e, lo, hi) in rows.items()
        ]
    )  # fmt: skip


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

    #: term, coef, se, p_value, odds_ratio, or_ci_low, or_ci_high, note ("not estimable: separation")
    coefficients: pd.DataFrame
    auc: float
    auc_se: float
    auc_ci_low: float
    auc_ci_high: float
    n: int
    warnings: tuple[str, ...] = field(default=())


#: IRLS stops when the deviance changes by less than this, relative: statsmodels' default is an absolute
#: 1e-8, which left the SEs 1.4e-6 (relative) from R's; IRLS converges quadratically, so the few extra
#: iterations cost nothing and coefficients and SEs agree with R's glm to 1e-9 (test_stats_r_oracle.py)
FIT_RTOL = 1e-14
#: an LP optimum above this is a separating direction (the design is 0/1, the direction bounded by 1)
_SEPARATION_TOL = 1e-9
NOT_ESTIMABLE = "not estimable: separation"


@dataclass(frozen=True)
class Separation:
    """Which coefficients have no finite maximum-likelihood estimate, and which units they classify
    perfectly (Konis 2007: a direction b != 0 with (2y - 1) x'b >= 0 for every unit)."""

    infinite: npt.NDArray[np.bool_]
    #: units on the far side of the separating direction: their fitted probability tends to 0 or 1
    classified: npt.NDArray[np.bool_]
    #: the separating direction (a sum of the LP optima), for ranking the classified units
    direction: npt.NDArray[np.float64]

    @property
    def found(self) -> bool:
        return bool(self.infinite.any())


def detect_separation(x: npt.ArrayLike, y: npt.ArrayLike) -> Separation:
    """Complete or quasi-complete separation of a logistic model, by linear programming.

    For each coefficient j, maximise and minimise b_j over directions b in [-1, 1]^p with
    (2 y_i - 1) x_i'b >= 0 for every unit: the MLE of b_j is infinite exactly when one of the optima is
    not zero (Konis, "Linear programming algorithms for detecting separated data in binary logistic
    regression models", DPhil thesis, Oxford 2007; R's detectseparation package). 2p small LPs (HiGHS).
    ``x`` holds the design (with its constant column), one row per distinct unit pattern.
    """
    design = np.asarray(x, dtype=float)
    sign = np.where(np.asarray(y).astype(bool), 1.0, -1.0)
    constraints = -(sign[:, None] * design)  # A b <= 0  <=>  (2y - 1) x'b >= 0
    p = design.shape[1]
    infinite = np.zeros(p, dtype=bool)
    direction = np.zeros(p)
    bounds = [(-1.0, 1.0)] * p
    zeros = np.zeros(len(design))
    # one LP first: is there any separating direction at all? (most models: no, and then one LP is all)
    anywhere = optimize.linprog(
        constraints.sum(axis=0), A_ub=constraints, b_ub=zeros, bounds=bounds, method="highs"
    )
    if anywhere.status == 0 and -anywhere.fun <= _SEPARATION_TOL:
        return Separation(infinite, np.zeros(len(design), dtype=bool), direction)
    for j in range(p):
        for towards in (1.0, -1.0):
            objective = np.zeros(p)
            objective[j] = -towards  # linprog minimises
            found = optimize.linprog(objective, A_ub=constraints, b_ub=zeros, bounds=bounds, method="highs")
            if found.status == 0 and -found.fun > _SEPARATION_TOL:
                infinite[j] = True
                direction += found.x
    return Separation(infinite, _classified(design, sign > 0, direction), direction)


def _classified(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.bool_], direction: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """Units on the far side of a separating direction (their fitted probability tends to 0 or 1)."""
    sign = np.where(y, 1.0, -1.0)
    return np.asarray(sign * (x @ direction) > _SEPARATION_TOL)


def _independent_columns(x: npt.NDArray[np.float64]) -> list[int]:
    """Columns (in order, the constant first) that are not linear combinations of earlier ones: with two
    signs always seen together the coefficients are not identifiable, and the separation LP would take
    their difference for a separating direction."""
    rows = np.unique(x, axis=0)
    kept: list[int] = []
    for j in range(x.shape[1]):
        if np.linalg.matrix_rank(rows[:, [*kept, j]]) == len(kept) + 1:
            kept.append(j)
    return kept


def _fit(
    y: npt.NDArray[np.float64], x: npt.NDArray[np.float64], w: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Maximum-likelihood coefficients, SEs and Wald P values (IRLS to :data:`FIT_RTOL`)."""
    model = sm.GLM(y, x, family=sm.families.Binomial(), freq_weights=w)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")  # separation is found beforehand, by LP, not from warnings
        fit = model.fit(tol=0.0, rtol=FIT_RTOL, maxiter=200)
    return np.asarray(fit.params), np.asarray(fit.bse), np.asarray(fit.pvalues)


def _ranks(primary: npt.NDArray[np.float64], secondary: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Dense ranks of (primary, secondary) pairs: a score that orders units lexicographically."""
    pairs = np.stack([np.round(primary, 12), np.round(secondary, 12)], axis=1)
    _, inverse = np.unique(pairs, axis=0, return_inverse=True)
    return inverse.astype(float).ravel()


def logistic_rule(
    frame: pd.DataFrame, signs: list[str], outcome: str, weight: str | None = None, alpha: float = 0.05
) -> LogisticRule:
    """Logistic regression of ``outcome`` (bool) on the ``signs`` (bool), then its ROC AUC with DeLong CI.

    Signs that never vary are left out (no information, and they make the design singular). Complete or
    quasi-complete separation (common with pathognomonic signs) is found by linear programming
    (:func:`detect_separation`) before fitting: the coefficients whose maximum-likelihood estimate is
    infinite are reported as :data:`NOT_ESTIMABLE`, never as the huge numbers an iterative fit stops at;
    the others are the limiting estimates, fitted on the units the separating signs do not classify
    perfectly. The AUC ranks units by the separating direction first, then by the fitted model.
    """
    warnings: list[str] = []
    w = frame[weight].to_numpy(dtype=float) if weight else np.ones(len(frame))
    used = [s for s in signs if frame[s].astype(bool).nunique() > 1]
    dropped = sorted(set(signs) - set(used))
    if dropped:
        warnings.append(f"constant signs left out of the model: {', '.join(dropped)}")
    y = frame[outcome].astype(bool).to_numpy().astype(float)
    x = sm.add_constant(frame[used].astype(bool).astype(float).to_numpy(), has_constant="add")
    independent = _independent_columns(x)
    collinear = [used[j - 1] for j in range(1, x.shape[1]) if j not in independent]
    if collinear:
        warnings.append(f"signs left out as combinations of the others (collinear): {', '.join(collinear)}")
        used = [used[j - 1] for j in independent[1:]]
        x = x[:, independent]
    terms = ["const", *used]
    present = w > 0
    separation = detect_separation(x[present], y[present])
    params = np.full(len(terms), math.nan)
    bse = np.full(len(terms), math.nan)
    pvals = np.full(len(terms), math.nan)
    if not separation.found:
        params, bse, pvals = _fit(y, x, w)
        scores = x @ params
    else:
        infinite = [t for t, inf in zip(terms, separation.infinite, strict=True) if inf]
        rest = present & ~_classified(x, y.astype(bool), separation.direction)
        keep = [j for j in range(len(terms)) if not separation.infinite[j] and j > 0]
        keep = [j for j in keep if np.unique(x[rest, j]).size > 1]
        finite_terms = [terms[j] for j in keep]
        warnings.append(
            f"separation: {', '.join(infinite)} not estimable (maximum-likelihood estimate infinite)"
            + (
                f"; {', '.join(finite_terms)} estimated on the {int(w[rest].sum())} units the separating "
                "signs do not classify perfectly"
                if finite_terms
                else ""
            )
        )
        eta = np.zeros(len(y))
        if rest.any() and np.unique(y[rest]).size > 1:
            sub = np.column_stack([np.ones(int(rest.sum())), x[rest][:, keep]])
            sub_params, sub_bse, sub_p = _fit(y[rest], sub, w[rest])
            for k, j in enumerate(keep, start=1):
                params[j], bse[j], pvals[j] = sub_params[k], sub_bse[k], sub_p[k]
            if not separation.infinite[0]:
                params[0], bse[0], pvals[0] = sub_params[0], sub_bse[0], sub_p[0]
            eta = np.column_stack([np.ones(len(y)), x[:, keep]]) @ sub_params
        scores = _ranks(x @ separation.direction, eta)
    auc, se, lo, hi = weighted_auc_delong(scores, y.astype(bool), w, alpha)
    z = float(stats.norm.ppf(1 - alpha / 2))
    coef = pd.DataFrame(
        {
            "term": terms,
            "coef": params,
            "se": bse,
            "p_value": pvals,
            "odds_ratio": np.exp(params),
            "or_ci_low": np.exp(params - z * bse),
            "or_ci_high": np.exp(params + z * bse),
            "note": [NOT_ESTIMABLE if inf else "" for inf in separation.infinite],
        }
    )
    warnings.append("AUC is in-sample (optimistic); vertebrae of one patient are not independent")
    return LogisticRule(coef, auc, se, lo, hi, int(w.sum()), tuple(warnings))
