"""Calibrated integer samples hit the printed mean, SD and range exactly."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from cohortpool.synth.calibrate import calibrated_sample, solve_integers


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_calibrated_sample_rounds_to_the_targets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ages = calibrated_sample(rng, 31, 62.13, 10.773, 39, 83, decimals=2, sd_decimals=3)
    assert round(statistics.mean(ages), 2) == 62.13
    assert round(statistics.stdev(ages), 3) == 10.773
    assert (min(ages), max(ages)) == (39, 83)
    bmi = [
        v / 100
        for v in calibrated_sample(rng, 50, 23.38, 3.306, 15.43, 31.56, decimals=3, sd_decimals=3, scale=100)
    ]
    assert round(statistics.mean(bmi), 3) == 23.38
    assert round(statistics.stdev(bmi), 3) == 3.306
    assert (min(bmi), max(bmi)) == (15.43, 31.56)


def test_solve_integers_refuses_an_impossible_spread() -> None:
    rng = np.random.default_rng(1)
    # 10 values in [0, 10] with mean 5 cannot have a sum of squares beyond 10 * 25 + 10 * 25
    with pytest.raises(ValueError, match="sum of squares"):
        solve_integers(rng, 10, 50, 600, 0, 10)
