"""Derived variables use the plan's closed boundaries; weighted counting equals a plain group-by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohortpool.contract import resources
from cohortpool.stats.frames import apply_derived, codes_of, count_cube, expand, level_text
from cohortpool.stats.plan import load_plan


@pytest.mark.parametrize(
    ("height_loss", "grade"),
    [(0.0, "none"), (19.99, "none"), (20.0, "mild"), (25.0, "mild"), (25.01, "moderate"), (25.5, "moderate"),
     (40.0, "moderate"), (40.01, "severe"), (95.0, "severe")],
)  # fmt: skip
def test_genant_boundaries_are_closed_as_the_plan_says(height_loss: float, grade: str) -> None:
    genant = load_plan(resources.plan_path()).derived[0]
    out = apply_derived(pd.DataFrame({"height_loss_pct": [height_loss]}), [genant])
    assert out[genant.name].iloc[0] == grade


def test_missing_source_value_gives_missing_category() -> None:
    genant = load_plan(resources.plan_path()).derived[0]
    out = apply_derived(pd.DataFrame({"height_loss_pct": [np.nan, 30.0]}), [genant])
    assert pd.isna(out[genant.name].iloc[0]) and out[genant.name].iloc[1] == "moderate"
    assert list(out[genant.name].cat.categories) == ["none", "mild", "moderate", "severe"]


def test_count_cube_equals_weighted_groupby() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "site": rng.choice(["a", "b", "c"], 500),
        "g": rng.choice(["X", "Y"], 500),
        "v": pd.array(rng.choice([True, False, None], 500), dtype="boolean"),
        "w": rng.integers(1, 9, 500),
    })  # fmt: skip
    axes = [codes_of(frame[c]) for c in ("site", "g", "v")]
    cube = count_cube(frame["w"], *((c, len(u)) for c, u in axes))
    ref = frame.dropna().groupby(["site", "g", "v"])["w"].sum()
    for (site, g, v), n in ref.items():
        i, j, k = axes[0][1].index(site), axes[1][1].index(g), axes[2][1].index(v)
        assert cube[i, j, k] == n
    assert cube.sum() == ref.sum()  # rows with a missing value are left out


def test_expand_repeats_values_by_weight_and_drops_missing() -> None:
    out = expand(pd.Series([1.5, np.nan, 3.0]), pd.Series([2, 5, 1]))
    assert list(out) == [1.5, 1.5, 3.0]


def test_levels_print_booleans_as_yes_no() -> None:
    assert (level_text(True), level_text(np.False_), level_text("M")) == ("yes", "no", "M")
