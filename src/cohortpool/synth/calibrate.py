"""Integer samples with an exact sum and sum of squares: how site 1 hits Table 1 to the printed digit.

The paper prints group means and SDs to 2-3 decimals. Drawing at random and hoping would need thousands
of tries; instead we draw a plausible sample, then move it by unit steps until the sum (mean) and the sum
of squares (SD) equal targets chosen so the statistics round to the printed values. Values are integers
in the recorded unit (years; hundredths of kg/m2), so the recorded data reproduce the figures exactly.
"""

from __future__ import annotations

import math

import numpy as np


def sample_sd(total: int, sumsq: int, n: int) -> float:
    """Sample (n-1) standard deviation from the sum and the sum of squares."""
    return math.sqrt((sumsq - total * total / n) / (n - 1))


def target_sumsq(n: int, total: int, sd: float, decimals: int, scale: int = 1) -> int:
    """The sum of squares nearest ``sd`` whose SD (divided by ``scale``) rounds to ``sd`` at ``decimals``.

    Sums of squares of integers have the parity of their sum (x*x = x mod 2), so only those are reachable.
    """
    ideal = total * total / n + (sd * scale) ** 2 * (n - 1)
    base = round(ideal)
    for step in range(0, 2000):
        for candidate in (base + step, base - step):
            if candidate % 2 != total % 2:
                continue
            got = sample_sd(total, candidate, n) / scale
            if round(got, decimals) == round(sd, decimals):
                return candidate
    raise ValueError(f"no integer sample of n={n}, sum={total} has SD rounding to {sd}")


def solve_integers(rng: np.random.Generator, n: int, total: int, sumsq: int, lo: int, hi: int) -> list[int]:
    """``n`` integers in ``[lo, hi]`` with min ``lo``, max ``hi``, the given sum and sum of squares.

    Deterministic for a given generator state. Raises ``ValueError`` if the targets are unreachable.
    """
    mean = total / n
    sd = sample_sd(total, sumsq, n)
    values = [int(v) for v in np.clip(np.rint(rng.normal(mean, sd, size=n)), lo + 1, hi - 1)]
    values[0], values[1] = lo, hi  # the printed range: both ends occur
    free = list(range(2, n))
    # fix the sum by unit steps on the values nearest the mean (changes the spread least)
    while (diff := total - sum(values)) != 0:
        step = 1 if diff > 0 else -1
        movable = [i for i in free if lo < values[i] + step < hi]
        if not movable:
            raise ValueError(f"cannot reach sum {total} within [{lo}, {hi}]")
        i = min(movable, key=lambda j: (abs(values[j] + step - mean), j))
        values[i] += step
    # fix the sum of squares by pair moves (x_i + 1, x_j - 1): sum unchanged, squares change by
    # 2 (x_i - x_j + 1); greedy on the remaining difference converges because steps of 2 exist
    for _ in range(100_000):
        diff = sumsq - sum(v * v for v in values)
        if diff == 0:
            return values
        best: tuple[int, int, int] | None = None
        for i in free:
            if values[i] + 1 >= hi:
                continue
            for j in free:
                if i == j or values[j] - 1 <= lo:
                    continue
                delta = 2 * (values[i] - values[j] + 1)
                gap = abs(diff - delta)
                if best is None or gap < best[0]:
                    best = (gap, i, j)
        if best is None or best[0] >= abs(diff):
            raise ValueError(f"cannot reach sum of squares {sumsq} (stuck {diff} away)")
        _, i, j = best
        values[i] += 1
        values[j] -= 1
    raise ValueError("sum-of-squares search did not converge")


def calibrated_sample(
    rng: np.random.Generator,
    n: int,
    mean: float,
    sd: float,
    lo: float,
    hi: float,
    *,
    decimals: int,
    sd_decimals: int,
    scale: int = 1,
) -> list[int]:
    """Integers (in units of ``1/scale``) whose mean and SD round to the targets, range ``[lo, hi]``.

    Returns values in the scaled unit (e.g. hundredths when ``scale=100``); the mean is ``mean`` rounded
    to ``decimals`` and the SD rounds to ``sd`` at ``sd_decimals``.
    """
    total = round(mean * n * scale)
    if round(total / n / scale, decimals) != round(mean, decimals):
        raise ValueError(f"no sum of {n} integers has mean {mean} at {decimals} decimals")
    sumsq = target_sumsq(n, total, sd, sd_decimals, scale)
    shuffled = solve_integers(rng, n, total, sumsq, round(lo * scale), round(hi * scale))
    order = rng.permutation(n)
    return [shuffled[int(k)] for k in order]
