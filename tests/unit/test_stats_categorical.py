"""Categorical comparisons: the rule's test runs, R x C is exact, Monte Carlo is seeded, ORs oriented."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cohortpool.stats import categorical as c
from cohortpool.stats import tests as t


def test_ffh_on_a_2x2_table_equals_fisher_exact() -> None:
    table = [[3, 7], [9, 2]]
    p, exact = c.fisher_freeman_halton(table)
    assert exact
    assert p == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-12)


def test_ffh_enumeration_probabilities_sum_to_one() -> None:
    # the observed table's P when it is the least probable is its own probability; the sum over all is 1
    rows, cols = [4, 5, 3], [3, 6, 3]
    assert c.all_tables_count(rows, cols) > 10
    p, _ = c.fisher_freeman_halton([[3, 1, 0], [0, 5, 0], [0, 0, 3]])
    assert 0 < p < 0.01
    p_all, _ = c.fisher_freeman_halton([[1, 2, 1], [1, 2, 2], [1, 2, 0]])
    assert 0.5 < p_all <= 1.0


def test_ffh_falls_back_to_seeded_monte_carlo_and_is_reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c, "FFH_MAX_TABLES", 10)
    table = [[5, 2, 1, 4], [1, 6, 3, 2]]
    p1, exact1 = c.fisher_freeman_halton(table, samples=2000)
    p2, _ = c.fisher_freeman_halton(table, samples=2000)
    monkeypatch.setattr(c, "FFH_MAX_TABLES", 200_000)
    p_exact, exact = c.fisher_freeman_halton(table)
    assert not exact1 and exact
    assert p1 == p2  # scipy's default would differ run to run
    assert p1 == pytest.approx(p_exact, abs=0.03)


def test_compare_categorical_runs_the_test_the_rule_picks() -> None:
    big = c.compare_categorical([[44, 6], [9, 22]])
    assert big.test == t.PEARSON_CHI2
    chi2, df, p = c.pearson_chi2([[44, 6], [9, 22]])
    assert (big.statistic, big.df, big.p_value) == (chi2, df, p)
    small = c.compare_categorical([[8, 2], [3, 9]])
    assert small.test == t.FISHER_EXACT
    assert small.p_value == pytest.approx(stats.fisher_exact([[8, 2], [3, 9]]).pvalue)
    assert math.isnan(small.statistic)
    yates = c.compare_categorical([[50, 2], [40, 6]])
    assert yates.test == t.YATES_CHI2
    assert yates.statistic < c.pearson_chi2([[50, 2], [40, 6]])[0]


def test_yates_correction_never_exceeds_the_deviation() -> None:
    # |O - E| = 0.25 < 0.5 everywhere: R (and scipy) shrink the correction to 0.25, giving statistic 0
    stat, _, p = c.pearson_chi2([[10, 10], [10, 11]], yates=True)
    assert stat == pytest.approx(0.0, abs=1e-12)
    assert p == pytest.approx(1.0)


def test_odds_ratio_is_the_sample_or_oriented_second_group_vs_reference() -> None:
    # reference: 44 absent, 6 present; second group: 9 absent, 22 present
    orr, lo, hi, corrected = c.sample_odds_ratio([[44, 6], [9, 22]])
    assert orr == pytest.approx((22 * 44) / (6 * 9))
    assert lo < orr < hi and not corrected
    # R's conditional MLE is a different number (documented): make sure we do not silently report it
    assert c.conditional_mle_or([[44, 6], [9, 22]]) != pytest.approx(orr, rel=1e-3)


def test_zero_cell_odds_ratio_uses_haldane_correction_and_says_so() -> None:
    res = c.compare_categorical([[50, 0], [9, 22]])
    assert res.odds_ratio == pytest.approx((22.5 * 50.5) / (0.5 * 9.5))
    assert any("0.5 added" in w for w in res.warnings)


def test_no_variation_gives_no_test_and_a_warning() -> None:
    res = c.compare_categorical([[50, 0], [31, 0]])
    assert res.test == "" and math.isnan(res.p_value)
    assert res.warnings


def test_negative_or_fractional_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative whole counts"):
        c.compare_categorical(np.array([[1.5, 2], [3, 4]]))


def test_ffh_with_all_singleton_columns_does_not_crash() -> None:
    # e.g. a date column: every level seen once; scipy's Monte Carlo raises on this table
    table = np.array([[1] * 15 + [0] * 10, [0] * 15 + [1] * 10])
    p, exact = c.fisher_freeman_halton(table, samples=500)
    assert not exact
    assert 0 < p <= 1


def test_table_count_matches_enumeration() -> None:
    rows, cols = [4, 5, 3], [3, 6, 3]
    assert c.count_tables(rows, cols, 10_000) == c.all_tables_count(rows, cols)
    assert c.count_tables([40, 40], [1] * 80, 1000) is None


def test_readme_states_the_enumeration_limit_the_code_uses() -> None:
    import re
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8").split())
    stated = re.search(r"exact by enumeration up to ([\d,]+) tables", readme)
    assert stated is not None
    assert int(stated.group(1).replace(",", "")) == c.FFH_MAX_TABLES


@pytest.mark.parametrize(
    "table",
    [
        [[14, 16], [0, 0]],  # a site without MET patients
        [[12, 0], [6, 0]],  # a level nobody has (Genant "none" at a small site)
        [[0, 12], [0, 6]],  # a sign every unit of both groups shows
    ],
)
def test_an_odds_ratio_with_an_empty_row_or_column_is_not_estimable(table: list[list[int]]) -> None:
    # 0.5 added to every cell would print (n1 + 0.5) / (n2 + 0.5) or so, e.g. 0.88 (0.02 to 47.17)
    orr, lo, hi, corrected = c.sample_odds_ratio(table)
    assert np.isnan(orr) and np.isnan(lo) and np.isnan(hi) and not corrected
