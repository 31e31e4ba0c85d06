"""Paired detection: Cochran's Q from pattern counts, McNemar as R does it, Holm."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import cochrans_q, mcnemar
from statsmodels.stats.multitest import multipletests

from cohortpool.stats import paired
from cohortpool.stats import tests as t


def test_mcnemar_one_vs_one_discordant_gives_p_one_where_statsmodels_gives_048() -> None:
    ours = paired.mcnemar(1, 1, exact=False)
    theirs = mcnemar([[5, 1], [1, 5]], exact=False, correction=True)
    assert ours.p_value == 1.0
    assert theirs.pvalue == pytest.approx(0.4795, abs=1e-4)  # the pitfall this module exists to avoid


def test_mcnemar_without_discordant_pairs_is_undefined_with_a_warning() -> None:
    for exact in (True, False):
        r = paired.mcnemar(0, 0, exact=exact)
        assert math.isnan(r.p_value)
        assert "no discordant pairs" in r.warnings[0]


def test_mcnemar_is_exact_below_the_threshold_and_chi2_above() -> None:
    few = paired.mcnemar(3, 12)
    assert few.test == t.MCNEMAR_EXACT
    assert few.p_value == pytest.approx(stats.binomtest(3, 15).pvalue)
    many = paired.mcnemar(30, 12)
    assert many.test == t.MCNEMAR_CHI2
    assert many.statistic == pytest.approx((18 - 1) ** 2 / 42)
    assert paired.mcnemar(3, 12, exact_below=10).test == t.MCNEMAR_CHI2


def test_cochran_q_from_pattern_counts_equals_statsmodels_on_units() -> None:
    rng = np.random.default_rng(3)
    units = (rng.random((97, 3)) < [0.3, 0.5, 0.65]).astype(int)
    pat = pd.DataFrame(units, columns=["XR", "CT", "MR"]).value_counts().rename("n").reset_index()
    ours = paired.cochran_q(pat[["XR", "CT", "MR"]].to_numpy(), pat["n"].to_numpy())
    ref = cochrans_q(units)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.n_units == 97


def test_cochran_q_without_any_discordant_unit_is_undefined() -> None:
    r = paired.cochran_q([[1, 1, 1], [0, 0, 0]], [10, 5])
    assert math.isnan(r.statistic) and r.warnings


def test_holm_matches_statsmodels_and_skips_undefined() -> None:
    p = [0.01, 0.04, 0.03, math.nan, 0.5, 0.04]
    ours = paired.holm(p)
    finite = [x for x in p if not math.isnan(x)]
    ref = list(multipletests(finite, method="holm")[1])
    assert math.isnan(ours[3])
    assert [x for x in ours if not math.isnan(x)] == pytest.approx(ref, rel=1e-12)


def test_paired_comparison_gives_q_then_each_pair_with_holm() -> None:
    frame = pd.DataFrame(
        {"XR": [1, 0, 1, 0, 1], "CT": [1, 1, 0, 0, 1], "MR": [1, 1, 1, 0, 0], "n": [20, 15, 3, 30, 2]}
    ).astype({"XR": bool, "CT": bool, "MR": bool})
    out = paired.paired_comparison(frame, ["XR", "CT", "MR"], "n")
    assert list(out["comparison"]) == ["all", "XR vs CT", "XR vs MR", "CT vs MR"]
    xr_ct = out.iloc[1]
    assert (xr_ct["discordant_b"], xr_ct["discordant_c"]) == (3, 15)  # XR+ CT-: 3; XR- CT+: 15
    raw = list(out["p_value"].iloc[1:])
    assert list(out["p_holm"].iloc[1:]) == pytest.approx(paired.holm(raw))
