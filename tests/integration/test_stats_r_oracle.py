"""Every statistic and P value agrees with base R (the independent oracle) to 1e-9 relative.

One Rscript run computes R's answers on the fixtures below (t.test, wilcox.test, chisq.test, fisher.test,
mantelhaen.test, mcnemar.test, binom.test, p.adjust, and Levene as an ANOVA of absolute deviations); each
test compares cohortpool's number with R's. Skipped when Rscript is not installed (CI installs r-base-core).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cohortpool.stats import categorical as cat
from cohortpool.stats import continuous as cont
from cohortpool.stats import paired, pooled

pytestmark = pytest.mark.integration

REL = 1e-9
RNG = np.random.default_rng(20251001)
# continuous fixtures: (first/reference group, second group)
CONTINUOUS = {
    "age": (RNG.normal(69.6, 8.5, 50).round(), RNG.normal(62.1, 10.8, 31).round()),
    "bmi": (RNG.normal(23.38, 3.31, 50).round(2), RNG.normal(22.87, 2.67, 31).round(2)),
    "small": (np.array([1.5, 2.25, 3.0, 3.0, 7.5]), np.array([2.0, 4.5, 6.0, 6.0, 8.25, 9.0])),
    # degenerate but legal: one group without variation (the t is defined), two values a group
    "one_constant": (np.full(6, 70.0), np.array([60.0, 61.0, 59.0, 62.0, 60.5])),
    "two_each": (np.array([1.0, 2.0]), np.array([3.0, 5.0])),
}
# no variation within either group: R's t.test stops ("data are essentially constant"), so must we
CONSTANT = {
    "both_constant": (np.full(5, 70.0), np.full(4, 60.0)),
    "inexact_constant": (np.full(30, 0.001), np.full(15, 1e4)),  # 0.001's mean has rounding noise
}
TABLES_2X2 = {
    "sex": [[44, 6], [9, 22]],
    "yates": [[50, 2], [40, 6]],
    "fisher": [[8, 2], [3, 9]],
    "tiny_dev": [[10, 10], [10, 11]],
}
TABLES_RXC = {
    "r2x3": [[3, 1, 4], [2, 7, 1]],
    "r3x3": [[2, 0, 3], [1, 4, 0], [0, 2, 5]],
    "r2x4": [[10, 3, 1, 0], [2, 8, 3, 4]],
    "big2x3": [[30, 20, 25], [28, 22, 30]],
}
STRATA = {
    "three": [[[10, 5], [4, 12]], [[8, 8], [6, 9]], [[3, 7], [2, 9]]],
    "small_dev": [[[5, 5], [5, 6]], [[6, 5], [5, 5]]],
    "big": [[[40, 12], [20, 35]], [[25, 30], [10, 41]], [[60, 15], [33, 20]], [[9, 9], [4, 15]]],
}
MCNEMAR = {"b30c12": (30, 12), "b1c1": (1, 1), "b0c0": (0, 0), "b9c2": (9, 2), "b2c1": (2, 1)}
HOLM = [0.01, 0.04, 0.03, 0.5, 0.04, 0.0001]


def _r_vec(x: np.ndarray | list[float]) -> str:
    return "c(" + ", ".join(repr(float(v)) for v in x) + ")"


def _r_matrix(table: list[list[int]]) -> str:
    arr = np.asarray(table)
    return f"matrix({_r_vec(arr.T.ravel())}, nrow = {arr.shape[0]})"


def _r_array(strata: list[list[list[int]]]) -> str:
    arr = np.asarray(strata)  # K x 2 x 2 -> R's 2 x 2 x K, column-major
    return f"array({_r_vec(np.transpose(arr, (1, 2, 0)).ravel(order='F'))}, dim = c(2, 2, {arr.shape[0]}))"


def _script() -> str:
    lines = [
        'out <- function(key, v) cat(key, sprintf("%.17g", as.numeric(v)), "\\n")',
        # Breslow-Day with Tarone's correction is not in base R: written here from Breslow & Day (1980) and
        # Tarone (1985), solving for the expected cell with uniroot (ours solves the quadratic in closed form)
        "breslow_day <- function(x, psi) {",
        "  e <- v <- a <- numeric(0)",
        "  for (k in seq_len(dim(x)[3])) {",
        "    t <- x[, , k]; n <- sum(t); r1 <- sum(t[1, ]); c1 <- sum(t[, 1])",
        "    lo <- max(0, r1 + c1 - n); hi <- min(r1, c1)",
        "    f <- function(m) m * (n - r1 - c1 + m) - psi * (r1 - m) * (c1 - m)",
        "    m <- uniroot(f, c(lo, hi), tol = 1e-14)$root",
        "    e <- c(e, m); a <- c(a, t[1, 1])",
        "    v <- c(v, 1 / (1 / m + 1 / (r1 - m) + 1 / (c1 - m) + 1 / (n - r1 - c1 + m)))",
        "  }",
        "  stat <- sum((a - e)^2 / v) - (sum(a) - sum(e))^2 / sum(v)",
        "  c(stat, pchisq(stat, length(a) - 1, lower.tail = FALSE))",
        "}",
    ]
    for name, (a, b) in CONTINUOUS.items():
        lines += [
            f"a <- {_r_vec(a)}; b <- {_r_vec(b)}",
            "s <- t.test(b, a, var.equal = TRUE)",
            f"out('{name}.student', c(s$statistic, s$parameter, s$p.value, s$conf.int))",
            f"w <- t.test(b, a); out('{name}.welch', c(w$statistic, w$parameter, w$p.value))",
            "m <- wilcox.test(b, a, exact = FALSE, correct = FALSE)",
            f"out('{name}.mw', c(m$statistic, m$p.value))",
            "g <- factor(c(rep(1, length(a)), rep(2, length(b)))); x <- c(a, b)",
            "d <- abs(x - ave(x, g)); l <- anova(lm(d ~ g))",
            f"out('{name}.levene', c(l[['F value']][1], l[['Pr(>F)']][1]))",
        ]  # fmt: skip
    for name, (a, b) in CONSTANT.items():
        lines += [
            f"a <- {_r_vec(a)}; b <- {_r_vec(b)}",
            "s <- try(t.test(b, a, var.equal = TRUE), silent = TRUE)",
            f"out('{name}.stops', grepl('essentially constant', s[1]))",
        ]
    for name, tab in TABLES_2X2.items():
        lines += [
            f"x <- {_r_matrix(tab)}",
            "p <- suppressWarnings(chisq.test(x, correct = FALSE))",
            f"out('{name}.pearson', c(p$statistic, p$p.value))",
            "y <- suppressWarnings(chisq.test(x, correct = TRUE))",
            f"out('{name}.yates', c(y$statistic, y$p.value))",
            f"f <- fisher.test(x); out('{name}.fisher', c(f$p.value, f$estimate))",
        ]  # fmt: skip
    for name, tab in TABLES_RXC.items():
        lines += [
            f"x <- {_r_matrix(tab)}",
            "p <- suppressWarnings(chisq.test(x))",
            f"out('{name}.pearson', c(p$statistic, p$parameter, p$p.value))",
            f"f <- fisher.test(x); out('{name}.fisher', f$p.value)",
        ]  # fmt: skip
    for name, st in STRATA.items():
        lines += [
            f"m <- mantelhaen.test({_r_array(st)})",
            f"out('{name}.cmh', c(m$statistic, m$p.value, m$estimate, m$conf.int))",
            f"out('{name}.bd', breslow_day({_r_array(st)}, m$estimate))",
        ]
    for name, (b, c) in MCNEMAR.items():
        lines += [
            f"x <- matrix(c(5, {c}, {b}, 7), 2)",
            f"m <- suppressWarnings(mcnemar.test(x)); out('{name}.mcnemar', c(m$statistic, m$p.value))",
            f"e <- if ({b} + {c} > 0) binom.test({b}, {b} + {c})$p.value else NaN; out('{name}.exact', e)",
        ]
    lines.append(f"out('holm', p.adjust({_r_vec(HOLM)}, method = 'holm'))")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def r(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[float]]:
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip("Rscript not installed (apt-get install r-base-core); CI installs it")
    path = Path(tmp_path_factory.mktemp("r")) / "oracle.R"
    path.write_text(_script(), encoding="utf-8")
    done = subprocess.run([rscript, "--vanilla", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answers: dict[str, list[float]] = {}
    for line in done.stdout.splitlines():
        key, *values = line.split()
        answers[key] = [float(v) for v in values]
    return answers


def close(ours: float, theirs: float) -> bool:
    if math.isnan(theirs):
        return math.isnan(ours)
    return ours == pytest.approx(theirs, rel=REL, abs=1e-300)


@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_t_tests_levene_and_mann_whitney_agree_with_r(r: dict[str, list[float]], name: str) -> None:
    a, b = CONTINUOUS[name]
    res = cont.compare_continuous(a, b)
    t_, df, p, lo, hi = r[f"{name}.student"]
    assert all(close(x, y) for x, y in [(res.student_t, t_), (res.student_df, df), (res.student_p, p)])
    assert close(res.md_ci_low, lo) and close(res.md_ci_high, hi)
    wt, wdf, wp = r[f"{name}.welch"]
    assert close(res.welch_t, wt) and close(res.welch_df, wdf) and close(res.welch_p, wp)
    u, up = r[f"{name}.mw"]
    assert close(res.mann_whitney_u, u) and close(res.mann_whitney_p, up)
    f, fp = r[f"{name}.levene"]
    if name == "two_each":
        # two values a group lie equally far from their mean: no within-group variance of the deviations;
        # R's anova prints the rounding noise as F = 8e31 ("essentially perfect fit"), we say not estimable
        assert f > 1e15 and math.isnan(res.levene_f) and math.isnan(res.levene_p)
    else:
        assert close(res.levene_f, f) and close(res.levene_p, fp)


@pytest.mark.parametrize("name", list(CONSTANT))
def test_t_is_not_estimable_where_r_finds_the_data_essentially_constant(
    r: dict[str, list[float]], name: str
) -> None:
    assert r[f"{name}.stops"] == [1.0]
    res = cont.compare_continuous(*CONSTANT[name])
    assert math.isnan(res.statistic) and math.isnan(res.p_value) and math.isnan(res.levene_f)
    assert res.warnings[0].startswith("not estimable: no variation within either group")


@pytest.mark.parametrize("name", list(TABLES_2X2))
def test_2x2_chi_square_yates_and_fisher_agree_with_r(r: dict[str, list[float]], name: str) -> None:
    tab = TABLES_2X2[name]
    stat, _, p = cat.pearson_chi2(tab)
    assert close(stat, r[f"{name}.pearson"][0]) and close(p, r[f"{name}.pearson"][1])
    ystat, _, yp = cat.pearson_chi2(tab, yates=True)
    assert close(ystat, r[f"{name}.yates"][0]) and close(yp, r[f"{name}.yates"][1])
    fp, estimate = r[f"{name}.fisher"]
    assert close(cat.fisher_2x2(tab), fp)
    # R's estimate is the conditional MLE of the OR; ours is documented as the sample OR. The helper that
    # gives the conditional MLE exists for this comparison. R finds it with uniroot at its default
    # tolerance (eps^0.25, about 1e-4), so this one number can only agree to about 1e-4, not 1e-9.
    assert cat.conditional_mle_or(tab) == pytest.approx(estimate, rel=1e-3)


@pytest.mark.parametrize("name", list(TABLES_RXC))
def test_rxc_pearson_and_fisher_freeman_halton_agree_with_r(r: dict[str, list[float]], name: str) -> None:
    tab = TABLES_RXC[name]
    stat, df, p = cat.pearson_chi2(tab)
    assert close(stat, r[f"{name}.pearson"][0]) and df == r[f"{name}.pearson"][1]
    assert close(p, r[f"{name}.pearson"][2])
    ffh, exact = cat.fisher_freeman_halton(tab)
    assert exact
    assert close(ffh, r[f"{name}.fisher"][0])


@pytest.mark.parametrize("name", list(STRATA))
def test_cmh_and_mantel_haenszel_or_agree_with_r(r: dict[str, list[float]], name: str) -> None:
    res = pooled.cmh(STRATA[name])
    stat, p, est, lo, hi = r[f"{name}.cmh"]
    assert close(res.statistic, stat) and close(res.p_value, p)
    assert close(res.odds_ratio, est) and close(res.ci_low, lo) and close(res.ci_high, hi)
    bd, bd_p = r[f"{name}.bd"]
    # uniroot converges to ~1e-14 absolute on the expected cell, so the statistic agrees to ~1e-9 relative
    # (absolute 1e-12 where the statistic is 0 up to rounding: the "small_dev" strata share one OR)
    assert res.breslow_day == pytest.approx(bd, rel=REL, abs=1e-12)
    assert res.breslow_day_p == pytest.approx(bd_p, rel=REL, abs=1e-12)


@pytest.mark.parametrize("name", list(MCNEMAR))
def test_mcnemar_chi2_and_exact_agree_with_r(r: dict[str, list[float]], name: str) -> None:
    b, c = MCNEMAR[name]
    chi = paired.mcnemar(b, c, exact=False)
    stat, p = r[f"{name}.mcnemar"]
    assert close(chi.statistic, stat) and close(chi.p_value, p)
    assert close(paired.mcnemar(b, c, exact=True).p_value, r[f"{name}.exact"][0])


def test_mcnemar_equal_discordants_gives_one_as_r() -> None:
    assert paired.mcnemar(1, 1, exact=False).p_value == 1.0


def test_holm_agrees_with_r(r: dict[str, list[float]]) -> None:
    assert all(close(x, y) for x, y in zip(paired.holm(HOLM), r["holm"], strict=True))


# --- logistic regression (the accuracy analysis' combined rule) on R's own datasets ------------------------
# R's glm is run to convergence (epsilon 1e-14; its default 1e-8 leaves the weighted fit's SEs 7e-9 from
# the unit-level fit's), so both sides are compared at the maximum-likelihood estimate itself.
LOGISTIC_SCRIPT = r"""
out <- function(key, v) cat(key, sprintf("%.17g", as.numeric(v)), "\n")
tight <- glm.control(epsilon = 1e-14, maxit = 100)
d <- infert
d$sp <- d$spontaneous > 0; d$ind <- d$induced > 0
# quasi-complete separation on purpose: x3 is present only in cases
d$x3 <- d$case == 1 & d$education == "12+ yrs"
write.csv(data.frame(case = d$case == 1, sp = d$sp, ind = d$ind, x3 = d$x3), "infert.csv", row.names = FALSE)
m <- glm(case ~ sp + ind, family = binomial, data = d, control = tight)
out("infert.coef", coef(m)); out("infert.se", sqrt(diag(vcov(m))))
# the same model on the sign patterns with frequency weights (what the warehouse hands over)
p <- aggregate(rep(1, nrow(d)), by = list(case = d$case, sp = d$sp, ind = d$ind), FUN = sum)
mw <- suppressWarnings(glm(case ~ sp + ind, family = binomial, data = p, weights = x, control = tight))
out("patterns.coef", coef(mw)); out("patterns.se", sqrt(diag(vcov(mw))))
s <- suppressWarnings(glm(case ~ sp + ind + x3, family = binomial, data = d))
out("separated.coef", coef(s)); out("separated.se", sqrt(diag(vcov(s)))); out("separated.fitted", fitted(s))
l <- glm(case ~ sp + ind, family = binomial, data = d[!d$x3, ], control = tight)
out("limit.coef", coef(l)); out("limit.se", sqrt(diag(vcov(l))))
write.csv(data.frame(am = mtcars$am == 1, vs = mtcars$vs == 1, gear45 = mtcars$gear > 3), "mtcars.csv",
          row.names = FALSE)
t <- suppressWarnings(glm(am ~ vs + I(gear > 3), family = binomial, data = mtcars))
out("mtcars.se", sqrt(diag(vcov(t)))); out("mtcars.fitted", fitted(t))
"""


@pytest.fixture(scope="module")
def r_logistic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[float]]]:
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip("Rscript not installed (apt-get install r-base-core); CI installs it")
    folder = Path(tmp_path_factory.mktemp("r_logistic"))
    (folder / "logistic.R").write_text(LOGISTIC_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [rscript, "--vanilla", "logistic.R"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    answers = {key: [float(v) for v in values] for key, *values in map(str.split, done.stdout.splitlines())}
    return folder, answers


def test_logistic_coefficients_and_ses_agree_with_r_glm(
    r_logistic: tuple[Path, dict[str, list[float]]],
) -> None:
    import pandas as pd

    from cohortpool.stats.accuracy import logistic_rule

    folder, r = r_logistic
    data = pd.read_csv(folder / "infert.csv")
    rule = logistic_rule(data, ["sp", "ind"], "case")
    coef = rule.coefficients
    assert list(coef["term"]) == ["const", "sp", "ind"]
    assert all(close(a, b) for a, b in zip(coef["coef"], r["infert.coef"], strict=True))
    assert all(close(a, b) for a, b in zip(coef["se"], r["infert.se"], strict=True))
    patterns = data.value_counts(["case", "sp", "ind"]).rename("n").reset_index()
    weighted = logistic_rule(patterns, ["sp", "ind"], "case", weight="n").coefficients
    assert all(close(a, b) for a, b in zip(weighted["coef"], r["patterns.coef"], strict=True))
    # R's weighted fit takes its covariance from the working weights of the iteration before the last,
    # so its SEs sit ~1e-8 from the MLE's (its unit-level fit converges closer); ours equal the MLE's
    assert all(close(a, b) for a, b in zip(weighted["se"], r["infert.se"], strict=True))
    assert weighted["se"].to_numpy() == pytest.approx(r["patterns.se"], rel=1e-7)


def test_quasi_complete_separation_is_detected_and_the_rest_is_rs_limit(
    r_logistic: tuple[Path, dict[str, list[float]]],
) -> None:
    import pandas as pd

    from cohortpool.stats.accuracy import NOT_ESTIMABLE, logistic_rule

    folder, r = r_logistic
    data = pd.read_csv(folder / "infert.csv")
    rule = logistic_rule(data, ["sp", "ind", "x3"], "case")
    coef = rule.coefficients.set_index("term")
    # R's glm stops at a finite but meaningless x3 (SE in the thousands); we say it has no estimate
    assert r["separated.se"][3] > 1000
    assert coef.loc["x3", "note"] == NOT_ESTIMABLE and math.isnan(coef.loc["x3", "coef"])
    assert any("x3 not estimable" in w for w in rule.warnings)
    # the other coefficients are the limit R's fit creeps towards: the model on the units x3 does not
    # classify perfectly, to 1e-9; R's full fit is near them, not at them
    finite = coef.loc[["const", "sp", "ind"]]
    assert all(close(a, b) for a, b in zip(finite["coef"], r["limit.coef"], strict=True))
    assert all(close(a, b) for a, b in zip(finite["se"], r["limit.se"], strict=True))
    assert finite["coef"].to_numpy() == pytest.approx(r["separated.coef"][:3], rel=1e-4)
    assert (finite["note"] == "").all()
    # the rule ranks the units as R's fitted probabilities do
    assert rule.auc == pytest.approx(_auc(r["separated.fitted"], data["case"]), rel=1e-9)


def test_separation_on_mtcars_leaves_no_estimable_coefficient(
    r_logistic: tuple[Path, dict[str, list[float]]],
) -> None:
    import pandas as pd

    from cohortpool.stats.accuracy import NOT_ESTIMABLE, logistic_rule

    folder, r = r_logistic
    data = pd.read_csv(folder / "mtcars.csv")
    rule = logistic_rule(data, ["vs", "gear45"], "am")
    # R's SEs of all three terms are in the thousands: none has a finite MLE
    assert min(r["mtcars.se"]) > 1000
    assert list(rule.coefficients["note"]) == [NOT_ESTIMABLE] * 3
    assert rule.auc == pytest.approx(_auc(r["mtcars.fitted"], data["am"]), rel=1e-9)


def _auc(scores: list[float], labels: object) -> float:
    """ROC AUC of R's fitted probabilities (Mann-Whitney U / n1 n0, ties counted half; R's fitted values
    of units it separates sit within 1e-9 of 0 or 1, so they are rounded to 12 digits first)."""
    from scipy import stats

    s = np.round(np.asarray(scores), 12)
    y = np.asarray(labels).astype(bool)
    u = stats.mannwhitneyu(s[y], s[~y]).statistic
    return float(u / (y.sum() * (~y).sum()))
