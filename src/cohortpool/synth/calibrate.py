"""Integer samples with an exact sum and sum of squares: how site 1 hits Table 1 to the printed digit.

The paper prints group means and SDs to 2-3 decimals. Drawing at random and hoping would need thousands
of tries; instead we draw a normal sample standardised to the targets, round it, then remove the rounding
residue by unit steps until the sum (mean) and the sum of squares (SD) equal targets chosen so the
statistics round to the printed values. Values are integers in the recorded unit (years; hundredths of
kg/m2), so the recorded data reproduce the figures exactly.
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


def _start(rng: np.random.Generator, n: int, total: int, sumsq: int, lo: int, hi: int) -> list[int]:
    """A normal-looking draw whose continuous mean and SD already match, with ``lo`` and ``hi`` in it."""
    rest_n = n - 2
    rest_sum = total - lo - hi
    rest_sumsq = sumsq - lo * lo - hi * hi
    rest_mean = rest_sum / rest_n
    rest_var = rest_sumsq / rest_n - rest_mean**2
    if rest_var <= 0:
        raise ValueError(f"range [{lo}, {hi}] is too wide for the requested SD")
    z = rng.normal(size=rest_n)
    z = (z - z.mean()) / z.std()
    rest = np.clip(np.rint(rest_mean + math.sqrt(rest_var) * z), lo + 1, hi - 1)
    return [lo, hi, *(int(v) for v in rest)]


def solve_integers(rng: np.random.Generator, n: int, total: int, sumsq: int, lo: int, hi: int) -> list[int]:
    """``n`` integers in ``[lo, hi]`` with min ``lo``, max ``hi``, the given sum and sum of squares.

    The draw is standardised to the target mean and SD before rounding, so only rounding residue is left
    to remove and the shape stays that of a normal sample. Deterministic for a given generator state.
    Raises ``ValueError`` if the targets are unreachable.
    """
    values = _start(rng, n, total, sumsq, lo, hi)
    free = list(range(2, n))  # the first two carry the printed range
    order = [free[int(k)] for k in rng.permutation(len(free))]
    # fix the sum by unit steps on randomly ordered values (rounding residue: a few units)
    k = 0
    while (diff := total - sum(values)) != 0:
        step = 1 if diff > 0 else -1
        i = order[k % len(order)]
        k += 1
        if lo < values[i] + step < hi:
            values[i] += step
        if k > 100 * n:
            raise ValueError(f"cannot reach sum {total} within [{lo}, {hi}]")
    # fix the sum of squares by pair moves (x_i + 1, x_j - 1): sum unchanged, squares change by
    # 2 (x_i - x_j + 1). Greedy moves close the gap; when no single move gets closer, two disjoint moves
    # whose changes add up to the remaining gap finish it exactly.
    for _ in range(10_000):
        diff = sumsq - sum(v * v for v in values)
        if diff == 0:
            return values
        moves = _unit_moves(values, free, lo, hi)
        gap, i, j = min((abs(diff - delta), i, j) for delta, pairs in moves.items() for i, j in pairs)
        if gap < abs(diff):
            values[i] += 1
            values[j] -= 1
            continue
        for delta, pairs in sorted(moves.items()):
            for i, j in pairs:
                for c, d in moves.get(diff - delta, []):
                    if len({i, j, c, d}) == 4:
                        for up, down in ((i, j), (c, d)):
                            values[up] += 1
                            values[down] -= 1
                        return values
        raise ValueError(f"cannot reach sum of squares {sumsq} (stuck {diff} away)")
    raise ValueError("sum-of-squares search did not converge")


def _unit_moves(values: list[int], free: list[int], lo: int, hi: int) -> dict[int, list[tuple[int, int]]]:
    """Change of the sum of squares -> up to 4 pairs (i up, j down) that make it, within the range."""
    moves: dict[int, list[tuple[int, int]]] = {}
    for i in free:
        if values[i] + 1 >= hi:
            continue
        for j in free:
            if i == j or values[j] - 1 <= lo:
                continue
            pairs = moves.setdefault(2 * (values[i] - values[j] + 1), [])
            if len(pairs) < 4:
                pairs.append((i, j))
    return moves


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
