"""Paired binary outcomes: every vertebra is read on every modality, so modalities are not independent.

Cochran's Q tests whether the detection rate differs across the k modalities; pairwise McNemar tests then
say which pairs differ, with Holm's correction across the pairs. Inputs are *pattern counts* (how many
units had each combination of detected / not detected across the modalities), which is what the warehouse
aggregates to, so 10^7 reads never leave DuckDB as rows.

Hand-written pieces and why:

* Cochran's Q from pattern counts: statsmodels' ``cochrans_q`` needs the unit-level matrix; the formula
  (Cochran 1950) needs only column totals and the sum of squared row totals. A unit test checks it equals
  statsmodels on the expanded matrix.
* McNemar: statsmodels' continuity-corrected statistic is (|b - c| - 1)^2 / (b + c) even when b = c, which
  gives P = 0.48 for 1 vs 1 (should be 1) and P = 0 for 0 vs 0 (undefined). R's ``mcnemar.test`` drops the
  correction when b = c; we do the same, and return NaN with a warning when there are no discordant pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from cohortpool.stats import tests as t

#: below this many discordant pairs McNemar is exact (binomial); the usual rule of thumb (b + c < 25)
MCNEMAR_EXACT_BELOW = 25


@dataclass(frozen=True)
class McNemarResult:
    """One pairwise McNemar comparison."""

    test: str
    b: int  # first positive, second negative
    c: int  # first negative, second positive
    statistic: float
    p_value: float
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class CochranQResult:
    """Cochran's Q across k paired binary outcomes."""

    statistic: float
    df: int
    p_value: float
    n_units: int
    warnings: tuple[str, ...] = field(default=())


def mcnemar(
    b: int, c: int, *, exact: bool | None = None, exact_below: int = MCNEMAR_EXACT_BELOW
) -> McNemarResult:
    """McNemar's test on the discordant counts b and c.

    ``exact=None`` chooses: exact binomial when b + c < ``exact_below``, else chi-square with
    continuity correction (omitted when b = c, as R does).
    """
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    use_exact = (b + c < exact_below) if exact is None else exact
    name = t.MCNEMAR_EXACT if use_exact else t.MCNEMAR_CHI2
    if b + c == 0:
        return McNemarResult(name, b, c, math.nan, math.nan, ("no discordant pairs: McNemar undefined",))
    if use_exact:
        p = float(stats.binomtest(b, b + c, 0.5).pvalue)
        return McNemarResult(name, b, c, float(b), min(1.0, p))
    correction = 1.0 if b != c else 0.0
    stat = (abs(b - c) - correction) ** 2 / (b + c)
    return McNemarResult(name, b, c, stat, float(stats.chi2.sf(stat, 1)))


def cochran_q(patterns: npt.ArrayLike, counts: npt.ArrayLike) -> CochranQResult:
    """Cochran's Q from pattern counts: ``patterns`` is (m, k) of 0/1, ``counts`` how many units had each."""
    pat = np.asarray(patterns, dtype=float)
    w = np.asarray(counts, dtype=float)
    if pat.ndim != 2 or pat.shape[0] != w.shape[0]:
        raise ValueError("patterns must be (m, k) with one count per pattern")
    k = pat.shape[1]
    col = (pat * w[:, None]).sum(axis=0)
    row = pat.sum(axis=1)
    total = float((row * w).sum())
    denom = k * total - float((row**2 * w).sum())
    n_units = int(w.sum())
    if k < 2 or denom <= 0:
        return CochranQResult(
            math.nan, k - 1, math.nan, n_units, ("no unit differs across modalities: Q undefined",)
        )
    q = (k - 1) * (k * float((col**2).sum()) - total**2) / denom
    return CochranQResult(q, k - 1, float(stats.chi2.sf(q, k - 1)), n_units)


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted P values; undefined P values stay undefined and do not count among the m tests.

    Hand-written (five lines, Holm 1979) because statsmodels' ``multipletests`` runs ``gc.collect()`` on
    every call (about 0.1 s each: most of a whole plan's run time); a unit test checks it equals
    statsmodels and R's ``p.adjust(method = "holm")``.
    """
    arr = np.asarray(p_values, dtype=float)
    out = np.full(arr.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(arr))
    if idx.size:
        order = idx[np.argsort(arr[idx], kind="stable")]
        m = idx.size
        scaled = np.minimum(1.0, (m - np.arange(m)) * arr[order])
        out[order] = np.maximum.accumulate(scaled)
    return [float(x) for x in out]


def paired_comparison(
    frame: pd.DataFrame,
    modalities: list[str],
    count_col: str = "n_units",
    exact_below: int = MCNEMAR_EXACT_BELOW,
) -> pd.DataFrame:
    """Cochran's Q and Holm-corrected pairwise McNemar for one finding in one group.

    ``frame`` has one boolean column per modality and a count column (pattern counts; one row per unit
    works too with a count of 1). Returns one row for Q (``comparison`` = "all") and one per pair.
    """
    pat = frame[modalities].astype(bool).to_numpy()
    w = frame[count_col].to_numpy(dtype=float) if count_col in frame else np.ones(len(frame))
    q = cochran_q(pat.astype(int), w)
    rows: list[dict[str, object]] = [
        {
            "comparison": "all",
            "test": t.COCHRAN_Q,
            "statistic": q.statistic,
            "df": float(q.df),
            "p_value": q.p_value,
            "p_holm": math.nan,
            "discordant_b": math.nan,
            "discordant_c": math.nan,
            "warnings": "; ".join(q.warnings),
        }
    ]
    pairs = list(combinations(range(len(modalities)), 2))
    results = []
    for i, j in pairs:
        b = int(w[pat[:, i] & ~pat[:, j]].sum())
        c = int(w[~pat[:, i] & pat[:, j]].sum())
        results.append(mcnemar(b, c, exact_below=exact_below))
    adjusted = holm([r.p_value for r in results])
    for (i, j), r, adj in zip(pairs, results, adjusted, strict=True):
        rows.append(
            {
                "comparison": f"{modalities[i]} vs {modalities[j]}",
                "test": r.test,
                "statistic": r.statistic,
                "df": 1.0 if r.test == t.MCNEMAR_CHI2 else math.nan,
                "p_value": r.p_value,
                "p_holm": adj,
                "discordant_b": float(r.b),
                "discordant_c": float(r.c),
                "warnings": "; ".join(r.warnings),
            }
        )
    return pd.DataFrame(rows)
