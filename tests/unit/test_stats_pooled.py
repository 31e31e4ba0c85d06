"""Pooling over sites: CMH as R, Breslow-Day at OR = 1, DerSimonian-Laird truncation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import StratifiedTable
from statsmodels.stats.meta_analysis import combine_effects

from cohortpool.stats import pooled

STRATA = [[[10, 5], [4, 12]], [[8, 8], [6, 9]], [[3, 7], [2, 9]]]


def test_dl_truncates_tau2_at_zero_when_q_below_df_unlike_statsmodels() -> None:
    y = np.array([0.10, 0.12, 0.09])
    v = np.array([0.04, 0.05, 0.03])
    ours = pooled.dersimonian_laird(y, v)
    theirs = combine_effects(y, v, method_re="dl")
    assert ours.q < ours.q_df
    assert ours.tau2 == 0.0 and theirs.tau2 < 0  # the pitfall
    assert ours.estimate == pytest.approx(ours.fixed_estimate)  # tau^2 = 0: random = fixed
    assert ours.estimate != pytest.approx(theirs.mean_effect_re, rel=1e-6)
    assert ours.i2 == 0.0


def test_dl_with_heterogeneity_matches_the_formula() -> None:
    y = np.array([0.1, 0.9, -0.4, 0.5])
    v = np.array([0.04, 0.05, 0.03, 0.02])
    r = pooled.dersimonian_laird(y, v)
    w = 1 / v
    fixed = (w * y).sum() / w.sum()
    q = (w * (y - fixed) ** 2).sum()
    tau2 = (q - 3) / (w.sum() - (w**2).sum() / w.sum())
    wr = 1 / (v + tau2)
    assert r.tau2 == pytest.approx(tau2) and tau2 > 0
    assert r.estimate == pytest.approx((wr * y).sum() / wr.sum())
    assert r.i2 == pytest.approx(100 * (q - 3) / q)
    assert sum(r.weights) == pytest.approx(100.0)


def test_breslow_day_is_finite_when_pooled_or_is_exactly_one() -> None:
    tables = np.array([[[5, 5], [5, 5]], [[3, 6], [6, 12]]], dtype=float)
    res = pooled.cmh(tables)
    assert res.odds_ratio == pytest.approx(1.0)
    st = StratifiedTable([t for t in tables])
    assert math.isnan(st.test_equal_odds(adjust=True).statistic)  # the pitfall
    assert res.breslow_day == pytest.approx(0.0, abs=1e-12)
    assert res.breslow_day_p == pytest.approx(1.0)


def test_breslow_day_agrees_with_statsmodels_away_from_one() -> None:
    res = pooled.cmh(STRATA)
    st = StratifiedTable([np.array(t, dtype=float) for t in STRATA])
    ref = st.test_equal_odds(adjust=True)
    assert res.breslow_day == pytest.approx(ref.statistic, rel=1e-9)
    assert res.breslow_day_p == pytest.approx(ref.pvalue, rel=1e-7)


def test_cmh_continuity_correction_only_when_deviation_at_least_half() -> None:
    # sum(a - E[a]) = 0.48 here: R applies no correction; subtracting 0.5 regardless is wrong
    tables = np.array([[[5, 5], [5, 6]], [[6, 5], [5, 5]]], dtype=float)
    n = tables.sum(axis=(1, 2))
    delta = (tables[:, 0, 0] - tables[:, 0, :].sum(1) * tables[:, :, 0].sum(1) / n).sum()
    assert abs(delta) < 0.5
    corrected, _ = pooled.cmh_test(tables, correct=True)
    uncorrected, _ = pooled.cmh_test(tables, correct=False)
    naive = StratifiedTable([t for t in tables]).test_null_odds(correction=True).statistic
    assert corrected == pytest.approx(uncorrected)
    assert naive != pytest.approx(corrected)  # (0.48 - 0.5)^2 instead of 0.48^2


def test_mh_odds_ratio_and_ci_agree_with_statsmodels() -> None:
    res = pooled.cmh(STRATA)
    st = StratifiedTable([np.array(t, dtype=float) for t in STRATA])
    assert res.odds_ratio == pytest.approx(st.oddsratio_pooled)
    assert (res.ci_low, res.ci_high) == pytest.approx(st.oddsratio_pooled_confint())


def test_strata_of_one_unit_are_dropped_with_a_warning() -> None:
    res = pooled.cmh([*STRATA, [[1, 0], [0, 0]]])
    assert res.strata_used == 3 and res.warnings


def test_stratification_removes_confounding_by_site() -> None:
    # Simpson's paradox: within each site no association (OR = 1), pooled rows suggest a strong one
    site_a = [[80, 20], [8, 2]]
    site_b = [[2, 8], [20, 80]]
    res = pooled.cmh([site_a, site_b])
    naive = np.array(site_a) + np.array(site_b)
    naive_or = naive[0, 0] * naive[1, 1] / (naive[0, 1] * naive[1, 0])
    assert res.odds_ratio == pytest.approx(1.0)
    assert naive_or > 5


def test_log_odds_ratio_drops_uninformative_strata_and_corrects_zero_cells() -> None:
    assert math.isnan(pooled.log_odds_ratio([[5, 0], [7, 0]])[0])
    lor, var, corrected = pooled.log_odds_ratio([[5, 0], [7, 3]])
    assert corrected and lor == pytest.approx(math.log(5.5 * 3.5 / (0.5 * 7.5)))
    assert var == pytest.approx(1 / 5.5 + 1 / 0.5 + 1 / 7.5 + 1 / 3.5)


def test_mh_odds_ratio_of_zero_over_zero_is_called_undefined_not_zero_or_infinite() -> None:
    # every vertebra of both groups shows the sign at every site: both cross-products vanish
    res = pooled.cmh([[[40, 0], [20, 0]], [[30, 0], [15, 0]]])
    assert math.isnan(res.odds_ratio) and math.isnan(res.statistic)
    assert (
        res.warnings[0] == "Mantel-Haenszel OR undefined (0/0: both cross-products are zero in every stratum)"
    )
    assert not any("0 or infinite" in w for w in res.warnings)
