"""Diagnostic accuracy with Wilson CIs and the logistic rule's AUC with DeLong CI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from cohortpool.stats import accuracy as acc


def test_metrics_from_counts_with_wilson_intervals() -> None:
    m = acc.diagnostic_accuracy(tp=20, fp=5, fn=10, tn=65).set_index("metric")
    assert m.loc["sensitivity", "estimate"] == pytest.approx(20 / 30)
    assert m.loc["specificity", "estimate"] == pytest.approx(65 / 70)
    assert m.loc["ppv", "estimate"] == pytest.approx(20 / 25)
    assert m.loc["npv", "estimate"] == pytest.approx(65 / 75)
    assert m.loc["accuracy", "estimate"] == pytest.approx(85 / 100)
    assert m.loc["lr_positive", "estimate"] == pytest.approx((20 / 30) / (5 / 70))
    assert m.loc["lr_negative", "estimate"] == pytest.approx((10 / 30) / (65 / 70))
    lo, hi = proportion_confint(20, 30, method="wilson")
    assert (m.loc["sensitivity", "ci_low"], m.loc["sensitivity", "ci_high"]) == pytest.approx((lo, hi))
    se = np.sqrt(1 / 20 - 1 / 30 + 1 / 5 - 1 / 70)
    assert m.loc["lr_positive", "ci_high"] == pytest.approx(
        m.loc["lr_positive", "estimate"] * np.exp(1.959964 * se)
    )


def test_perfect_specificity_gives_infinite_lr_without_ci() -> None:
    m = acc.diagnostic_accuracy(tp=5, fp=0, fn=5, tn=10).set_index("metric")
    assert np.isinf(m.loc["lr_positive", "estimate"]) and np.isnan(m.loc["lr_positive", "ci_low"])
    assert m.loc["lr_positive", "note"] == "infinite: no false positives"


def test_likelihood_ratios_of_zero_over_zero_are_undefined_not_infinite() -> None:
    # every unit positive for the sign: sensitivity 1, specificity 0, so LR- = 0 / 0
    m = acc.diagnostic_accuracy(tp=2, fp=2, fn=0, tn=0).set_index("metric")
    assert m.loc["lr_positive", "estimate"] == 1.0 and np.isnan(m.loc["lr_negative", "estimate"])
    # a site without negatives (no OP): specificity undefined, so are both ratios
    m = acc.diagnostic_accuracy(tp=5, fp=0, fn=5, tn=0).set_index("metric")
    assert np.isnan(m.loc["lr_positive", "estimate"]) and np.isnan(m.loc["lr_negative", "estimate"])


def test_delong_auc_equals_mann_whitney_and_weights_equal_expansion() -> None:
    rng = np.random.default_rng(5)
    s = rng.integers(0, 6, 300).astype(float)  # many ties
    y = (s + rng.normal(0, 2, 300)) > 3
    auc, se, lo, hi = acc.weighted_auc_delong(s, y)
    u = stats.mannwhitneyu(s[y], s[~y]).statistic
    assert auc == pytest.approx(u / (y.sum() * (~y).sum()), rel=1e-12)
    assert lo < auc < hi and se > 0
    frame = pd.DataFrame({"s": s, "y": y}).value_counts().rename("n").reset_index()
    auc_w, se_w, _, _ = acc.weighted_auc_delong(frame["s"], frame["y"], frame["n"])
    assert (auc_w, se_w) == (pytest.approx(auc, rel=1e-12), pytest.approx(se, rel=1e-12))


def test_logistic_rule_with_frequency_weights_equals_unit_rows() -> None:
    rng = np.random.default_rng(9)
    units = pd.DataFrame({"a": rng.random(400) < 0.5, "b": rng.random(400) < 0.3})
    units["y"] = (units["a"] & (rng.random(400) < 0.7)) | (rng.random(400) < 0.15)
    patterns = units.value_counts().rename("n").reset_index()
    one = acc.logistic_rule(units, ["a", "b"], "y")
    many = acc.logistic_rule(patterns, ["a", "b"], "y", weight="n")
    assert one.auc == pytest.approx(many.auc, rel=1e-9)
    assert one.coefficients["coef"].to_numpy() == pytest.approx(
        many.coefficients["coef"].to_numpy(), rel=1e-6
    )
    assert one.n == 400 == many.n


def test_separation_is_handled_with_a_warning_not_a_crash() -> None:
    frame = pd.DataFrame({"sign": [True] * 20 + [False] * 30, "y": [True] * 20 + [False] * 30})
    frame["other"] = [True, False] * 25
    rule = acc.logistic_rule(frame, ["sign", "other"], "y")
    assert rule.auc == pytest.approx(1.0)
    assert any("separation" in w for w in rule.warnings)


def test_constant_signs_are_left_out_of_the_model() -> None:
    frame = pd.DataFrame({"a": [True, False] * 20, "c": [False] * 40, "y": [True, True, False, False] * 10})
    rule = acc.logistic_rule(frame, ["a", "c"], "y")
    assert list(rule.coefficients["term"]) == ["const", "a"]
    assert any("constant signs" in w for w in rule.warnings)


def test_separation_detection_names_exactly_the_infinite_coefficients() -> None:
    # "a" present only in positives (quasi-complete), "b" an ordinary sign
    rng = np.random.default_rng(3)
    n = 200
    b = rng.random(n) < 0.5
    y = (rng.random(n) < np.where(b, 0.6, 0.3)) | (rng.random(n) < 0.05)
    a = y & (rng.random(n) < 0.3)
    x = np.column_stack([np.ones(n), a, b]).astype(float)
    found = acc.detect_separation(x, y)
    assert list(found.infinite) == [False, True, False]
    assert found.classified.sum() == a.sum()  # the units with the sign: all positive, all classified
    assert not acc.detect_separation(x[:, [0, 2]], y).found


def test_separated_sign_is_not_estimable_and_the_others_keep_finite_ses() -> None:
    frame = pd.DataFrame({"sign": [True] * 8 + [False] * 42, "other": [True, False] * 25})
    frame["y"] = frame["sign"] | (np.arange(50) % 3 == 0)
    rule = acc.logistic_rule(frame, ["sign", "other"], "y")
    coef = rule.coefficients.set_index("term")
    assert coef.loc["sign", "note"] == acc.NOT_ESTIMABLE and np.isnan(coef.loc["sign", "odds_ratio"])
    assert np.isfinite(coef.loc[["const", "other"], "se"]).all()
    assert coef.loc["other", "or_ci_low"] < coef.loc["other", "odds_ratio"] < coef.loc["other", "or_ci_high"]


def test_collinear_signs_are_left_out_not_taken_for_separation() -> None:
    rng = np.random.default_rng(4)
    a = rng.random(120) < 0.5
    frame = pd.DataFrame({"a": a, "twin": a, "y": a ^ (rng.random(120) < 0.3)})
    rule = acc.logistic_rule(frame, ["a", "twin"], "y")
    assert list(rule.coefficients["term"]) == ["const", "a"]
    assert (rule.coefficients["note"] == "").all()
    assert any("collinear" in w and "twin" in w for w in rule.warnings)


def test_a_metric_without_an_estimate_says_why() -> None:
    # a site without negatives (no OP vertebrae): specificity and both ratios are undefined
    m = acc.diagnostic_accuracy(tp=5, fp=0, fn=5, tn=0).set_index("metric")
    assert m.loc["specificity", "note"] == "no negative units"
    assert m.loc[["lr_positive", "lr_negative"], "note"].tolist() == ["no negative units"] * 2
    assert m.loc["sensitivity", "note"] == "" and m.loc["npv", "note"] == ""
    m = acc.diagnostic_accuracy(tp=2, fp=2, fn=0, tn=0).set_index("metric")
    assert (m.loc["npv", "note"], m.loc["lr_negative", "note"]) == ("every unit shows the sign", "0/0")
