"""Which test a comparison uses, by the rule taught with SPSS, and the names the outputs use.

The rule (as in the issue and most SPSS course notes, after Cochran 1954):

* 2 x 2 tables: N >= 40 and every expected count >= 5 -> Pearson chi-square; N >= 40 and the smallest expected
  count in [1, 5) -> chi-square with Yates' continuity correction; N < 40 or any expected count < 1 ->
  Fisher's exact test.
* R x C tables: Pearson chi-square unless more than 20 % of the cells expect fewer than 5 (or any expects
  fewer than 1), then the Fisher-Freeman-Halton exact test.
* Continuous: Student's equal-variance t test (the paper's headline) unless the plan declares the variable
  non-normal, then Mann-Whitney U; Welch's t and Levene's test are always reported beside Student's.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

STUDENT_T = "student_t"
WELCH_T = "welch_t"
MANN_WHITNEY = "mann_whitney"
PEARSON_CHI2 = "pearson_chi2"
YATES_CHI2 = "yates_chi2"
FISHER_EXACT = "fisher_exact"
FISHER_FREEMAN_HALTON = "fisher_freeman_halton"

#: every name a group comparison's ``test`` column can hold (the CLI contract)
COMPARISON_TESTS: tuple[str, ...] = (
    STUDENT_T,
    WELCH_T,
    MANN_WHITNEY,
    PEARSON_CHI2,
    YATES_CHI2,
    FISHER_EXACT,
    FISHER_FREEMAN_HALTON,
)

#: tests of the pooled (site-stratified) rows and the paired analyses
CMH = "cochran_mantel_haenszel"
RANDOM_EFFECTS_MD = "random_effects_mean_difference"
COCHRAN_Q = "cochran_q"
MCNEMAR_EXACT = "mcnemar_exact"
MCNEMAR_CHI2 = "mcnemar_chi2_cc"

#: thresholds of the rule, named so the plan can cite them
SMALL_N = 40
MIN_EXPECTED = 5.0
TINY_EXPECTED = 1.0
RXC_MAX_SMALL_FRACTION = 0.20


def expected_counts(table: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Expected cell counts under independence (row total x column total / N)."""
    t = np.asarray(table, dtype=float)
    n = t.sum()
    if n <= 0:
        return np.zeros_like(t)
    return np.asarray(np.outer(t.sum(axis=1), t.sum(axis=0)) / n, dtype=np.float64)


def choose_categorical_test(table: npt.ArrayLike) -> str:
    """The test the SPSS-taught rule picks for a contingency table (rows and columns with counts).

    Empty rows or columns are dropped first: a level nobody has does not make a table R x C.
    """
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.ndim != 2 or min(t.shape) < 2:
        return FISHER_EXACT  # no variation left: Fisher's P is 1, chi-square is undefined
    exp = expected_counts(t)
    n = t.sum()
    if t.shape == (2, 2):
        if n < SMALL_N or exp.min() < TINY_EXPECTED:
            return FISHER_EXACT
        if exp.min() < MIN_EXPECTED:
            return YATES_CHI2
        return PEARSON_CHI2
    small = float(np.mean(exp < MIN_EXPECTED))
    if small > RXC_MAX_SMALL_FRACTION or exp.min() < TINY_EXPECTED:
        return FISHER_FREEMAN_HALTON
    return PEARSON_CHI2


def choose_continuous_test(normal: bool = True) -> str:
    """Student's t (the paper's choice) for variables taken as normal, else Mann-Whitney U."""
    return STUDENT_T if normal else MANN_WHITNEY
