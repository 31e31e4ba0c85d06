"""How each kind of result frame is laid out as a printed table (headers and cell text).

The group comparisons look like the paper's tables (Variable | OP (n = ...) | MET (n = ...) | P), with the
method columns an SPSS user expects beside them; detection looks like Table 3 (a finding per row,
``n (%)`` per group and modality); accuracy is one row per sign. Anything else prints its columns as they
come, P values in their display form.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from cohortpool.report.cells import POOLED_SITES, TRUE_LEVELS, blank, groups_of, shape_of, text_of
from cohortpool.stats.result import ResultTable

TEST_NAMES = {
    "student_t": "Student t",
    "welch_t": "Welch t",
    "mann_whitney": "Mann-Whitney U",
    "pearson_chi2": "χ²",
    "yates_chi2": "χ² (continuity corrected)",
    "fisher_exact": "Fisher exact",
    "fisher_freeman_halton": "Fisher-Freeman-Halton",
    "cochran_mantel_haenszel": "CMH",
    "random_effects_mean_difference": "DL random effects",
    "breslow_day_tarone": "Breslow-Day-Tarone",
    "breslow_day": "Breslow-Day",
    "cochran_q": "Cochran Q",
    "mcnemar_exact": "McNemar exact",
    "mcnemar_chi2_cc": "McNemar χ² (cc)",
    "mcnemar_chi2": "McNemar χ²",
}
METHODS = {"site": "", "mantel_haenszel": "Mantel-Haenszel", "dersimonian_laird": "DL random effects"}
MODALITY_ORDER = ("XR", "CT", "MR", "ALL")
MODALITY_NAMES = {"XR": "X-ray", "CT": "CT", "MR": "MRI", "ALL": "Combined"}
ACCURACY_METRICS = {
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ppv": "PPV",
    "npv": "NPV",
    "lr_positive": "LR+",
    "lr_negative": "LR−",
    "accuracy": "Accuracy",
}
Table = tuple[list[str], list[list[str]]]


def cell(value: Any, decimals: int = 3) -> str:
    """A value as printed: empty for missing, fixed decimals for floats, marks and text as they are."""
    if blank(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15 and decimals == 0:
            return f"{int(value)}"
        return f"{value:.{decimals}f}"
    return str(value)


def effect(value: float, ratio: bool = True) -> str:
    """An effect with two decimals; a ratio that would print 0.00 gets two significant digits instead."""
    if ratio and value != 0 and abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.2f}"


def _interval(row: pd.Series, estimate: str, low: str, high: str) -> str:
    if blank(row.get(estimate)):
        return ""
    if isinstance(row[estimate], int | float) and not math.isfinite(float(row[estimate])):
        return "not estimable"
    if isinstance(row[estimate], str):
        return str(row[estimate])
    ratio = "ratio" in text_of(row.get("measure")) + text_of(row.get("estimate_kind"))
    shown = effect(float(row[estimate]), ratio)
    if blank(row.get(low)) or blank(row.get(high)) or isinstance(row[low], str):
        return shown
    return f"{shown} ({effect(float(row[low]), ratio)} to {effect(float(row[high]), ratio)})"


def statistical_test_name(value: Any) -> str:
    name = text_of(value)
    return TEST_NAMES.get(name, name.replace("_", " "))


def _variable_label(row: pd.Series, multi_level: bool) -> str:
    label = text_of(row.get("label")) or text_of(row.get("variable")).replace("_", " ")
    level = text_of(row.get("level"))
    return (
        f"{label}: {level}"
        if level and (multi_level or level not in TRUE_LEVELS) and level not in label
        else label
    )


def comparison(frame: pd.DataFrame) -> Table:
    """Paper layout: variable, group summaries (n in the header when constant), P, test, effect."""
    groups = groups_of(frame)
    headers = ["Variable"]
    constant: dict[str, str | None] = {}
    for group in groups:
        sizes = {cell(v, 0) for v in frame[f"n_{group}"]}
        constant[group] = next(iter(sizes)) if len(sizes) == 1 else None
        headers.append(f"{group} (n = {constant[group]})" if constant[group] else group)
    extras: list[tuple[str, Callable[[pd.Series], str]]] = [
        ("Effect (95 % CI)", _effect),
        ("Welch P", _welch),
        ("Levene P", _levene),
        ("Heterogeneity", _heterogeneity),
    ]
    shown_extras = [(h, f) for h, f in extras if any(f(r) for _, r in frame.iterrows())]
    headers += ["P", "Test", *[h for h, _ in shown_extras]]
    counts = frame["variable"].value_counts()
    rows = []
    for _, row in frame.iterrows():
        cells = [_variable_label(row, counts[row["variable"]] > 1)]
        for group in groups:
            summary = cell(row[f"summary_{group}"])
            if constant[group] is None and not blank(row[f"n_{group}"]):
                summary = f"{summary} [n = {cell(row[f'n_{group}'], 0)}]"
            cells.append(summary)
        cells += [_p_or_why_not(row), statistical_test_name(row.get("test"))]
        cells += [f(row) for _, f in shown_extras]
        rows.append(cells)
    return headers, rows


def not_estimable(row: pd.Series) -> str:
    """``not estimable: <reason>``, the reason being the row's warnings (the statistics stage says why)."""
    parts = text_of(row.get("warnings")).split("; ")
    reason = "; ".join(p.removeprefix("not estimable: ") for p in parts if p)
    return f"not estimable: {reason}" if reason else "not estimable"


def _p_or_why_not(row: pd.Series) -> str:
    """The P as displayed; where there is none (and suppression left no band), why not."""
    shown = text_of(row.get("p_display"))
    if shown or not text_of(row.get("warnings")):
        return shown
    return not_estimable(row)


def _effect(row: pd.Series) -> str:
    shown = _interval(row, "estimate", "ci_low", "ci_high")
    # an infinite estimate, or a NaN one (small-cell suppression empties to None instead): say why, unless
    # the P beside it already does
    estimate = row.get("estimate")
    missing = shown == "not estimable" or (isinstance(estimate, float) and math.isnan(estimate))
    if missing and text_of(row.get("warnings")) and not _p_or_why_not(row).startswith("not estimable"):
        return not_estimable(row)
    return shown


def _welch(row: pd.Series) -> str:
    return _p(row.get("welch_p"))


def _levene(row: pd.Series) -> str:
    return _p(row.get("levene_p"))


def _p(value: Any) -> str:
    if blank(value) or isinstance(value, str):
        return text_of(value)
    p = float(value)
    return "< 0.001" if p < 0.001 else f"{math.floor(p * 1000 + 0.5) / 1000:.3f}"


def _heterogeneity(row: pd.Series) -> str:
    if blank(row.get("heterogeneity_p")):
        return ""
    text = f"{statistical_test_name(row.get('heterogeneity_test'))} P {_p(row['heterogeneity_p'])}"
    if not blank(row.get("i2")):
        text += f"; I² {float(row['i2']):.0f} %"
    return text


def detection(frame: pd.DataFrame) -> Table:
    """Table 3 layout: a finding per row, detected n (%) per diagnosis and modality."""
    diagnoses = list(dict.fromkeys(frame["diagnosis"].astype(str)))
    present = set(frame["modality"].astype(str))
    modalities = [m for m in MODALITY_ORDER if m in present] + sorted(present - set(MODALITY_ORDER))
    headers = ["Finding"] + [f"{d} {MODALITY_NAMES.get(m, m)}" for d in diagnoses for m in modalities]
    cells: dict[str, dict[tuple[str, str], str]] = {}
    for _, row in frame.iterrows():
        detected, n = row["detected"], row["n"]
        if isinstance(detected, str) or isinstance(n, str):
            shown = detected if isinstance(detected, str) else f"{cell(detected, 0)} [n {n}]"
        else:
            share = 100.0 * float(detected) / float(n) if float(n) > 0 else math.nan
            shown = f"{int(detected)} ({cell(share, 2)})" if not math.isnan(share) else f"{int(detected)}"
        cells.setdefault(str(row["finding"]), {})[(str(row["diagnosis"]), str(row["modality"]))] = shown
    rows = [
        [finding.replace("_", " ")] + [values.get((d, m), "") for d in diagnoses for m in modalities]
        for finding, values in cells.items()
    ]
    return headers, rows


def _compact(row: pd.Series) -> str:
    """``0.71 (0.59–0.80)``: an estimate with its interval, narrow enough for seven metrics a row (the
    page lets the interval wrap under the estimate as one piece when the table is wider than the page)."""
    estimate: Any = row.get("estimate")
    note = text_of(row.get("note"))
    if blank(estimate):
        # a metric without an estimate says why; one small-cell suppression emptied has no note
        return f"not estimable: {note}" if note else ""
    if isinstance(estimate, str):
        return estimate
    if not math.isfinite(float(estimate)):
        return note or "not estimable"  # e.g. "infinite: no false positives"
    low: Any = row.get("ci_low")
    high: Any = row.get("ci_high")
    if blank(low) or blank(high) or isinstance(low, str) or isinstance(high, str):
        return effect(float(estimate))
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return effect(float(estimate))
    return f"{effect(float(estimate))} ({effect(float(low))}–{effect(float(high))})"


def accuracy(frame: pd.DataFrame) -> Table:
    """One row per sign: its 2x2 counts and every metric with its 95 % CI, in the compact form."""
    metrics = [m for m in ACCURACY_METRICS if m in set(frame["metric"])]
    headers = ["Sign", "TP", "FP", "FN", "TN", *[ACCURACY_METRICS[m] for m in metrics]]
    rows = []
    for sign, part in frame.groupby("sign", sort=False):
        first = part.iloc[0]
        by_metric = {str(r["metric"]): _compact(r) for _, r in part.iterrows()}
        rows.append(
            [str(sign).replace("_", " "), *[cell(first[c], 0) for c in ("tp", "fp", "fn", "tn")]]
            + [by_metric.get(m, "") for m in metrics]
        )
    return headers, rows


def forest(frame: pd.DataFrame) -> Table:
    """Per outcome its pooled rows first, then each site's (the caller leaves out rows it lists instead)."""
    headers = ["Outcome", "Site", "Estimate (95 % CI)", "Weight, %", "Method"]
    order = frame.assign(_pooled=~frame["is_pooled"].astype(bool), _outcome=pd.factorize(frame["label"])[0])
    rows = []
    for _, row in order.sort_values(["_outcome", "_pooled"], kind="stable").iterrows():
        site = "Pooled" if bool(row["is_pooled"]) else text_of(row["site_id"])
        shown = _interval(row, "estimate", "ci_low", "ci_high") or "suppressed"
        method = text_of(row.get("method"))
        rows.append([text_of(row["label"]), site, shown, cell(row["weight"], 1), METHODS.get(method, method)])
    return headers, rows


#: columns of a logistic model's coefficient table (cohortpool.stats.accuracy.LogisticRule.coefficients)
COEFFICIENT_COLUMNS = frozenset({"term", "coef", "se", "p_value", "odds_ratio"})


def coefficients(frame: pd.DataFrame) -> Table:
    """One row per model term: OR (95 % CI), coefficient, SE, P; a term without a finite estimate says why
    in its OR cell (e.g. "not estimable: separation") instead of printing the number a fit stopped at."""
    headers = ["Term", "OR (95 % CI)", "Coefficient", "SE", "P"]
    rows = []
    for _, row in frame.iterrows():
        term = "Intercept" if text_of(row["term"]) == "const" else text_of(row["term"]).replace("_", " ")
        note = text_of(row.get("note"))
        if note:
            rows.append([term, note, "", "", ""])
            continue
        interval = _interval(row, "odds_ratio", "or_ci_low", "or_ci_high") if "or_ci_low" in row else ""
        rows.append(
            [
                term,
                interval or cell(row["odds_ratio"], 2),
                cell(row["coef"]),
                cell(row["se"]),
                _p(row["p_value"]),
            ]
        )
    return headers, rows


_HIDDEN_COLUMNS = frozenset({"analysis", "site_id", "positive"})


def generic(frame: pd.DataFrame) -> Table:
    """Columns as they come; a P value shows in its display form when the frame has one."""
    columns = [
        c
        for c in frame.columns
        if c not in _HIDDEN_COLUMNS
        and not (c.endswith("p_value") and "p_display" in frame.columns)
        and f"{c}_display" not in frame.columns
        and not all(blank(v) for v in frame[c])
    ]
    headers = [_HEADERS.get(c, c.removesuffix("_display").replace("_", " ").capitalize()) for c in columns]
    rows = []
    for _, row in frame.iterrows():
        rows.append([_generic_cell(c, row[c]) for c in columns])
    return headers, rows


_HEADERS = {
    "p_display": "P",
    "p_holm_display": "P (Holm)",
    "df": "df",
    "auc": "AUC",
    "se": "SE",
    "n": "n",
    "ci_low": "95 % CI, low",
    "ci_high": "95 % CI, high",
}
#: columns that hold variable or finding names (snake_case reads better with spaces)
_NAME_COLUMNS = frozenset({"finding", "sign", "term", "variable"})


def _generic_cell(column: str, value: Any) -> str:
    if column == "test":
        return statistical_test_name(value)
    if column in _NAME_COLUMNS and isinstance(value, str):
        return value.replace("_", " ")
    integral = column in ("df", "n") or column.startswith("discordant")
    if integral and isinstance(value, float) and value.is_integer():
        return cell(value, 0)
    return cell(value)


def lay_out(result: ResultTable, frame: pd.DataFrame) -> Table:
    """Headers and rows for ``frame`` (all or part of ``result.frame``), by the result's shape."""
    shape = shape_of(result)
    if shape == "comparison":
        return comparison(frame)
    if shape == "detection":
        return detection(frame)
    if shape == "accuracy":
        return accuracy(frame)
    if shape == "forest":
        return forest(frame)
    if set(frame.columns) >= COEFFICIENT_COLUMNS:
        return coefficients(frame)
    return generic(frame)


def parts(result: ResultTable) -> list[tuple[str, pd.DataFrame]]:
    """The result split into its pooled rows ("") and each site's rows, pooled first, sites in order of
    appearance; one part when the result is not split by site (a forest frame is drawn whole)."""
    frame = result.frame
    if result.kind == "forest" or "site_id" not in frame.columns:
        return [("", frame)]
    site = frame["site_id"].map(text_of)
    pooled = site.isin(POOLED_SITES)
    sites = list(dict.fromkeys(site[~pooled]))
    if not pooled.any() and len(sites) <= 1:
        return [("", frame)]
    found = [("", frame[pooled])] if pooled.any() else []
    return found + [(s, frame[site == s]) for s in sites]
