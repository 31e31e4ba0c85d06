"""P values and summaries print as the paper prints them."""

from __future__ import annotations

import math

import pytest

from cohortpool.stats import format as fmt


@pytest.mark.parametrize(
    ("p", "shown"),
    [
        (0.00086, "< 0.001"),
        (0.000999, "< 0.001"),
        (0.001, "0.001"),
        (0.4682922, "0.468"),
        (0.0015, "0.002"),  # half-up, not banker's rounding
        (0.9996, "1.000"),
        (1.0, "1.000"),
    ],
)
def test_p_values_print_three_decimals_or_below_one_thousandth(p: float, shown: str) -> None:
    assert fmt.format_p(p) == shown


def test_undefined_p_prints_empty() -> None:
    assert fmt.format_p(math.nan) == ""
    assert fmt.format_p(None) == ""


def test_summaries_match_paper_layout() -> None:
    assert fmt.mean_sd(69.58, 8.4567) == "69.58 ± 8.46"
    assert fmt.count_percent(6, 50) == "6 (12.00)"
    assert fmt.median_iqr(3.0, 1.5, 4.25) == "3.00 (1.50-4.25)"


def test_a_group_of_one_prints_its_mean_without_a_dangling_sd() -> None:
    assert fmt.mean_sd(68.0, float("nan")) == "68.00"


def test_a_group_without_values_says_so() -> None:
    # words, not "-": the CSV export escapes a leading "-" as a formula ("'-")
    assert fmt.mean_sd(float("nan"), float("nan")) == "no values"
    assert fmt.median_iqr(float("nan"), float("nan"), float("nan")) == "no values"
    assert fmt.count_percent(0, 0) == "no values"


def test_numbers_beyond_1e15_print_in_scientific_notation() -> None:
    assert fmt.mean_sd(1e300 / 3, 5.77e299) == "3.33e+299 ± 5.77e+299"
