"""Tests of contingency tables: Pearson, Yates, Fisher (2 x 2) and Fisher-Freeman-Halton (R x C).

Odds ratio reported: the *sample* (cross-product) odds ratio ad/bc with Woolf's logit 95 % CI, adding 0.5
to every cell only when a cell is zero (Haldane-Anscombe; flagged in ``warnings``). This is what the forest
plots and the random-effects pooling use, so one number means one thing throughout. It is *not* R's
``fisher.test`` estimate, which is the conditional maximum-likelihood OR; :func:`conditional_mle_or` gives
that one (via scipy) for anyone comparing with R.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import special, stats
from scipy.stats.contingency import odds_ratio as _scipy_odds_ratio

from cohortpool.stats import tests as t

#: tables with more members than this are not enumerated; the Monte Carlo estimate is used instead
FFH_MAX_TABLES = 100_000
FFH_MONTE_CARLO_SAMPLES = 100_000
FFH_SEED = 20251001
#: R's fisher.test counts tables "as extreme" with this relative tolerance (fisher.test source: relErr)
_R_REL_ERR = 1.0 + 1e-7


@dataclass(frozen=True)
class CategoricalResult:
    """One categorical comparison: the test chosen, its result, the effect and what to watch."""

    test: str
    statistic: float
    df: float
    p_value: float
    odds_ratio: float = math.nan
    or_ci_low: float = math.nan
    or_ci_high: float = math.nan
    warnings: tuple[str, ...] = field(default=())


def _clean(table: npt.ArrayLike) -> npt.NDArray[np.int64]:
    arr = np.asarray(table)
    if arr.ndim != 2:
        raise ValueError(f"a contingency table must be 2-D, got shape {arr.shape}")
    if (arr < 0).any() or not np.all(np.equal(np.mod(arr, 1), 0)):
        raise ValueError("contingency table cells must be non-negative whole counts")
    return arr.astype(np.int64)


def pearson_chi2(table: npt.ArrayLike, *, yates: bool = False) -> tuple[float, float, float]:
    """Chi-square statistic, df and P; Yates' correction as R applies it (never more than |O - E|)."""
    arr = _clean(table)
    arr = arr[arr.sum(axis=1) > 0][:, arr.sum(axis=0) > 0]
    res = stats.chi2_contingency(arr, correction=yates)
    return float(res.statistic), float(res.dof), float(res.pvalue)


def fisher_2x2(table: npt.ArrayLike) -> float:
    """Two-sided Fisher exact P of a 2 x 2 table (scipy agrees with R's fisher.test)."""
    return float(stats.fisher_exact(_clean(table)).pvalue)


def _log_prob(arr: npt.NDArray[np.int64], log_const: float) -> float:
    return float(log_const - special.gammaln(arr + 1).sum())


def _tables_with_margins(rows: list[int], cols: list[int]) -> list[npt.NDArray[np.int64]] | None:
    """Every table with these margins, or None past :data:`FFH_MAX_TABLES`.

    Column by column, each column's total is split over the rows within what the rows still hold.
    """
    out: list[npt.NDArray[np.int64]] = []
    r = len(rows)

    def walk(j: int, remaining: list[int], acc: list[tuple[int, ...]]) -> bool:
        if len(out) > FFH_MAX_TABLES:
            return False
        if j == len(cols) - 1:
            out.append(np.array([*acc, tuple(remaining)], dtype=np.int64).T.reshape(r, len(cols)))
            return True
        for col in _splits(cols[j], remaining):
            if not walk(j + 1, [a - b for a, b in zip(remaining, col, strict=True)], [*acc, col]):
                return False
        return True

    return out if walk(0, list(rows), []) else None


def count_tables(rows: list[int], cols: list[int], cap: int) -> int | None:
    """How many tables have these margins, or None once the count (or the DP's state space) passes ``cap``.

    Dynamic programming over columns; the state is what each row still has to place.
    """
    states: dict[tuple[int, ...], int] = {tuple(rows): 1}
    for c in cols:
        nxt: dict[tuple[int, ...], int] = {}
        for remaining, ways in states.items():
            for split in _splits(c, list(remaining)):
                key = tuple(a - b for a, b in zip(remaining, split, strict=True))
                nxt[key] = nxt.get(key, 0) + ways
                if len(nxt) > cap:
                    return None
        states = nxt
    total = sum(states.values())
    return total if total <= cap else None


def _splits(total: int, caps: list[int]) -> list[tuple[int, ...]]:
    """Every way to spread ``total`` over rows that can take at most ``caps``."""
    if len(caps) == 1:
        return [(total,)] if total <= caps[0] else []
    out: list[tuple[int, ...]] = []
    rest_cap = sum(caps[1:])
    for first in range(max(0, total - rest_cap), min(total, caps[0]) + 1):
        out.extend((first, *tail) for tail in _splits(total - first, caps[1:]))
    return out


def fisher_freeman_halton(
    table: npt.ArrayLike, *, seed: int = FFH_SEED, samples: int = FFH_MONTE_CARLO_SAMPLES
) -> tuple[float, bool]:
    """Fisher-Freeman-Halton P of an R x C table, and whether it is exact.

    Exact by full enumeration of the tables with the observed margins when there are at most
    :data:`FFH_MAX_TABLES` of them (P is the total probability of tables no more probable than the observed
    one, with R's relative tolerance). Otherwise Monte Carlo with a *fixed seed*, P = (1 + #{simulated
    tables no more probable}) / (B + 1) as R's ``simulate.p.value``. Hand-written: scipy has no exact R x C
    test, its Monte Carlo is unseeded by default and raises on tables whose columns are all singletons.
    """
    arr = _clean(table)
    arr = arr[arr.sum(axis=1) > 0][:, arr.sum(axis=0) > 0]
    if min(arr.shape) < 2:
        return 1.0, True
    rows = [int(x) for x in arr.sum(axis=1)]
    cols = [int(x) for x in arr.sum(axis=0)]
    n = sum(rows)
    log_const = float(
        special.gammaln(np.array(rows) + 1).sum()
        + special.gammaln(np.array(cols) + 1).sum()
        - special.gammaln(n + 1)
    )
    obs = _log_prob(arr, log_const)
    tolerance = math.log(_R_REL_ERR)
    tables = _tables_with_margins(rows, cols) if count_tables(rows, cols, FFH_MAX_TABLES) else None
    if tables is not None:
        stack = np.stack(tables)
        logp = log_const - special.gammaln(stack + 1).sum(axis=(1, 2))
        p = float(np.exp(logp[logp <= obs + tolerance]).sum())
        return min(1.0, p), True
    rng = np.random.default_rng(seed)
    sims = stats.random_table(rows, cols).rvs(size=samples, random_state=rng)
    logp = log_const - special.gammaln(sims + 1).sum(axis=(1, 2))
    return float((1 + np.count_nonzero(logp <= obs + tolerance)) / (samples + 1)), False


#: why a sample odds ratio is not estimable
ZERO_MARGIN = "odds ratio 0/0: a group without units, or a level no unit (or every unit) of both groups has"


def sample_odds_ratio(table: npt.ArrayLike, alpha: float = 0.05) -> tuple[float, float, float, bool]:
    """Sample OR (row 2 vs row 1 odds of column 2) with Woolf CI; flags a 0.5 Haldane-Anscombe correction.
    NaN (:data:`ZERO_MARGIN`) when a row or column of the table is empty.

    Orientation: rows are the groups (reference first), columns are (absent, present), so OR > 1 means the
    level is more frequent in the second group.
    """
    arr = _clean(table).astype(float)
    if arr.shape != (2, 2):
        raise ValueError(f"an odds ratio needs a 2 x 2 table, got {arr.shape}")
    if (arr.sum(axis=0) == 0).any() or (arr.sum(axis=1) == 0).any():
        # a group without units, or a level no unit (or every unit) has: 0/0, which 0.5 added to every cell
        # would turn into a number the data do not contain ((n1 + 0.5) / (n2 + 0.5) or its inverse)
        return math.nan, math.nan, math.nan, False
    corrected = bool((arr == 0).any())
    if corrected:
        arr = arr + 0.5
    (a, b), (c, d) = arr  # a: ref absent, b: ref present, c: other absent, d: other present
    log_or = math.log(d * a / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    z = stats.norm.ppf(1 - alpha / 2)
    return math.exp(log_or), math.exp(log_or - z * se), math.exp(log_or + z * se), corrected


def conditional_mle_or(table: npt.ArrayLike) -> float:
    """R's ``fisher.test`` estimate (conditional MLE), for comparison with R only; same orientation."""
    arr = _clean(table)
    return float(_scipy_odds_ratio(arr[::-1, ::-1], kind="conditional").statistic)


def compare_categorical(
    table: npt.ArrayLike, *, seed: int = FFH_SEED, samples: int = FFH_MONTE_CARLO_SAMPLES
) -> CategoricalResult:
    """Compare groups (rows) on a categorical variable (columns) with the test the rule picks."""
    arr = _clean(table)
    warnings: list[str] = []
    nonempty = arr[arr.sum(axis=1) > 0][:, arr.sum(axis=0) > 0]
    if min(nonempty.shape, default=0) < 2:
        warnings.append("no variation (a single level or a single group): no test")
        return CategoricalResult("", math.nan, math.nan, math.nan, warnings=tuple(warnings))
    name = t.choose_categorical_test(arr)
    stat, df, p = math.nan, math.nan, math.nan
    if name in (t.PEARSON_CHI2, t.YATES_CHI2):
        stat, df, p = pearson_chi2(arr, yates=name == t.YATES_CHI2)
    elif name == t.FISHER_EXACT:
        p = fisher_2x2(nonempty)
    else:
        p, exact = fisher_freeman_halton(arr, seed=seed, samples=samples)
        if not exact:
            warnings.append(f"Fisher-Freeman-Halton P by Monte Carlo ({samples} tables, seed {seed})")
    result = CategoricalResult(name, stat, df, p, warnings=tuple(warnings))
    if arr.shape == (2, 2):
        or_, lo, hi, corrected = sample_odds_ratio(arr)
        if corrected:
            warnings.append("zero cell: odds ratio with 0.5 added to every cell")
        result = CategoricalResult(name, stat, df, p, or_, lo, hi, tuple(warnings))
    return result


def all_tables_count(rows: list[int], cols: list[int]) -> int:
    """How many tables share these margins (for tests and for choosing exact vs Monte Carlo)."""
    tables = _tables_with_margins(rows, cols)
    return -1 if tables is None else len(tables)
