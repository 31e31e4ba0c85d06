"""The SPSS-taught test-selection rule, at its boundaries."""

from __future__ import annotations

from cohortpool.stats import tests as t


def test_large_table_with_all_expected_at_least_five_uses_pearson() -> None:
    assert t.choose_categorical_test([[20, 10], [10, 20]]) == t.PEARSON_CHI2


def test_n_below_40_uses_fisher_even_with_large_expected() -> None:
    assert t.choose_categorical_test([[10, 9], [9, 11]]) == t.FISHER_EXACT  # N = 39


def test_n_of_exactly_40_is_not_small() -> None:
    assert t.choose_categorical_test([[10, 10], [10, 10]]) == t.PEARSON_CHI2


def test_smallest_expected_between_one_and_five_uses_yates() -> None:
    table = [[50, 2], [40, 6]]  # N = 98; smallest expected 8 * 42 / 98 = 3.4
    assert 1 <= t.expected_counts(table).min() < 5
    assert t.choose_categorical_test(table) == t.YATES_CHI2


def test_smallest_expected_of_exactly_five_uses_pearson() -> None:
    table = [[45, 5], [45, 5]]  # expected 5.0 in the small cells
    assert t.expected_counts(table).min() == 5.0
    assert t.choose_categorical_test(table) == t.PEARSON_CHI2


def test_expected_below_one_uses_fisher_even_when_large() -> None:
    assert t.expected_counts([[100, 0], [50, 1]]).min() < 1
    assert t.choose_categorical_test([[100, 0], [50, 1]]) == t.FISHER_EXACT


def test_rxc_uses_ffh_when_more_than_20_percent_cells_expect_under_five() -> None:
    sparse = [[30, 2, 1], [30, 3, 2]]  # 4 of 6 cells expect < 5
    dense = [[30, 20, 25], [28, 22, 30]]
    assert t.choose_categorical_test(sparse) == t.FISHER_FREEMAN_HALTON
    assert t.choose_categorical_test(dense) == t.PEARSON_CHI2


def test_empty_levels_do_not_make_a_table_rxc() -> None:
    assert t.choose_categorical_test([[20, 10, 0], [10, 20, 0]]) == t.PEARSON_CHI2


def test_continuous_headline_is_student_unless_declared_non_normal() -> None:
    assert t.choose_continuous_test(True) == t.STUDENT_T
    assert t.choose_continuous_test(False) == t.MANN_WHITNEY
