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


def test_groups_without_variation_give_no_t_rather_than_an_infinite_one() -> None:
    # SPSS prints no t when both SDs are 0; R's t.test stops ("data are essentially constant")
    r = cont.compare_continuous(np.full(5, 70.0), np.full(4, 60.0))
    assert r.test == t.STUDENT_T and np.isnan(r.statistic) and np.isnan(r.p_value)
    assert np.isnan(r.welch_t) and np.isnan(r.levene_f)
    assert r.mean_difference == -10.0 and np.isnan(r.md_ci_low) and np.isnan(r.md_ci_high)
    assert r.warnings == ("not estimable: no variation within either group (t and Levene undefined)",)
    ref = stats.mannwhitneyu(np.full(4, 60.0), np.full(5, 70.0), use_continuity=False, method="asymptotic")
    assert r.mann_whitney_p == pytest.approx(ref.pvalue)


def test_a_constant_group_of_inexact_decimals_has_sd_zero_not_rounding_noise() -> None:
    assert cont.summarize(np.full(30, 0.001)).sd == 0.0
    r = cont.compare_continuous(np.full(30, 0.001), np.full(15, 1e4))
    assert np.isnan(r.statistic) and np.isnan(r.levene_p)  # was t = 1.7e23 and "variances differ"


def test_values_near_the_float_limit_keep_their_sd_and_give_no_t() -> None:
    s = cont.summarize([1e300, -1e300])
    assert (s.mean, s.sd) == (0.0, pytest.approx(np.sqrt(2) * 1e300, rel=1e-12))
    r = cont.compare_continuous([1e300, -1e300], [1e300, 1e-300, 5.0])
    assert np.isnan(r.p_value)  # was t = 0, P = 1.000 from an overflowed SD
    assert r.warnings == ("not estimable: values too large to compute (t and Levene undefined)",)


def test_two_values_a_group_give_no_levene_rather_than_variances_differ() -> None:
    # |x - mean| is the same for both values of a group: Levene's F divides by a zero within-group variance
    r = cont.compare_continuous([1.0, 2.0], [3.0, 5.0])
    assert np.isnan(r.levene_f) and np.isnan(r.levene_p)
    assert r.warnings == ("Levene's test not estimable: absolute deviations do not vary within the groups",)
    assert r.p_value == pytest.approx(stats.ttest_ind([3.0, 5.0], [1.0, 2.0]).pvalue, rel=1e-12)
