"""Continuous comparisons: Student headline (the paper), Levene mean-centred (SPSS), Welch, Mann-Whitney."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cohortpool.stats import continuous as cont
from cohortpool.stats import tests as t


@pytest.fixture
def groups() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.normal(69.6, 8.5, 50).round(), rng.normal(62.1, 10.8, 31).round()


def test_headline_is_student_and_welch_is_beside_it(groups: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = groups
    r = cont.compare_continuous(a, b)
    assert r.test == t.STUDENT_T
    student = stats.ttest_ind(b, a, equal_var=True)
    welch = stats.ttest_ind(b, a, equal_var=False)
    assert (r.statistic, r.p_value, r.df) == (student.statistic, student.pvalue, len(a) + len(b) - 2)
    assert r.welch_p == pytest.approx(welch.pvalue) and r.welch_p != r.p_value
    assert r.mean_difference == pytest.approx(b.mean() - a.mean())
    assert r.md_ci_low < r.mean_difference < r.md_ci_high


def test_levene_is_mean_centred_like_spss(groups: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = groups
    r = cont.compare_continuous(a, b)
    # Levene (1960): one-way ANOVA on absolute deviations from the group mean
    anova = stats.f_oneway(np.abs(a - a.mean()), np.abs(b - b.mean()))
    assert r.levene_f == pytest.approx(anova.statistic, rel=1e-12)
    assert r.levene_f != pytest.approx(stats.levene(a, b).statistic)  # scipy's default is median-centred


def test_non_normal_variables_get_mann_whitney_with_median_iqr(groups: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = groups
    r = cont.compare_continuous(a, b, normal=False)
    assert r.test == t.MANN_WHITNEY
    ref = stats.mannwhitneyu(b, a, use_continuity=False, method="asymptotic")
    assert (r.statistic, r.p_value) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    s = r.summaries[0]
    assert s.q1 <= s.median <= s.q3


def test_quartiles_use_spss_haverage_definition() -> None:
    s = cont.summarize([1, 2, 3, 4])
    assert (s.q1, s.median, s.q3) == (1.25, 2.5, 3.75)  # type 6; R's default type 7 gives 1.75 / 3.25


def test_too_few_values_gives_no_test_and_a_warning() -> None:
    r = cont.compare_continuous([1.0], [2.0, 3.0])
    assert np.isnan(r.p_value) and r.warnings


def test_missing_values_are_dropped_not_propagated() -> None:
    r = cont.compare_continuous([1.0, 2.0, np.nan, 3.0], [2.0, 4.0, 5.0])
    assert r.summaries[0].n == 3 and np.isfinite(r.p_value)
