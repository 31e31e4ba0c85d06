"""Run a whole analysis plan on the analysis views: ``run_plan(plan, frames) -> list[ResultTable]``.

``frames`` maps view names (``patients``, ``vertebra_reads``, ``vertebrae``, ``findings_long``, or the
pre-aggregated ``detection_patterns``) to DataFrames as the glue layer fetched them from the warehouse. A
frame may be row-level (one row per unit) or already aggregated by the warehouse with the plan's weight
column (units per row); the results are the same. Each analysis is done per site and pooled over sites.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from cohortpool.stats.accuracy import diagnostic_accuracy, logistic_rule
from cohortpool.stats.compare import compare_groups
from cohortpool.stats.detection import detection_patterns, detection_tables
from cohortpool.stats.frames import apply_derived, as_keys, codes_of, count_cube, sites_of, weights
from cohortpool.stats.plan import Accuracy, Plan
from cohortpool.stats.result import ResultTable

NOTE_COMPARE = (
    "Per-site rows: SPSS-style tests (Student's t headline with Levene and Welch beside it; Mann-Whitney U "
    "for declared non-normal variables; chi-square, Yates or Fisher by the expected-count rule). "
    "Pooled rows: Cochran-Mantel-Haenszel with site as stratum (Mantel-Haenszel OR, Breslow-Day-Tarone "
    "heterogeneity) or DerSimonian-Laird random-effects mean difference (tau^2 truncated at 0)."
)
NOTE_OR = (
    "Odds ratios are second group vs reference; per-site ORs are sample (cross-product) ORs with Woolf CIs, "
    "0.5 added to every cell only when one is zero; not R fisher.test's conditional MLE."
)


def _frame(frames: Mapping[str, pd.DataFrame], view: str, what: str) -> pd.DataFrame:
    if view not in frames:
        raise KeyError(f"{what} needs the {view!r} view; frames given: {sorted(frames)}")
    return frames[view]


def _accuracy(plan: Plan, spec: Accuracy, frame: pd.DataFrame) -> list[ResultTable]:
    gcol = plan.groups.column
    missing = [c for c in (gcol, *spec.signs) if c not in frame.columns]
    if missing:
        raise KeyError(f"accuracy {spec.name!r}: view {spec.view!r} lacks columns {missing}")
    frame = as_keys(frame[frame[gcol].isin(plan.groups.levels)], [plan.site_column, gcol])
    site = (
        frame[plan.site_column]
        if plan.site_column in frame.columns
        else pd.Series(plan.pooled_label, index=frame.index)
    )
    pos = (frame[gcol] == spec.positive).to_numpy().astype(np.int64)
    w = weights(frame, plan)
    sites = sites_of(frame, plan)
    site_codes, site_values = codes_of(site)
    where = {str(v): k for k, v in enumerate(site_values)}
    scopes = [*sites, plan.pooled_label]

    def scoped(cube: np.ndarray, scope: str) -> np.ndarray:
        """The site's slice of a site-first count cube; the pooled scope sums every site."""
        if scope == plan.pooled_label:
            return np.asarray(cube.sum(axis=0))
        return np.asarray(cube[where[scope]])

    metrics: list[pd.DataFrame] = []
    for sign in spec.signs:
        present = frame[sign].astype(bool).to_numpy().astype(np.int64)
        cube = count_cube(w, (site_codes, len(site_values)), (pos, 2), (present, 2))  # site x pos x sign
        for scope in scopes:
            c = scoped(cube, scope)
            tp, fp, fn, tn = int(c[1, 1]), int(c[0, 1]), int(c[1, 0]), int(c[0, 0])
            m = diagnostic_accuracy(tp, fp, fn, tn, plan.options.alpha)
            m.insert(0, "sign", sign)
            m.insert(0, "site_id", scope)
            metrics.append(m)
    models: list[dict[str, Any]] = []
    coefs: list[pd.DataFrame] = []
    if spec.model:
        # every unit's signs as one integer pattern, so the model sees a few thousand weighted rows
        bits = np.zeros(len(frame), dtype=np.int64)
        for k, sign in enumerate(spec.signs):
            bits |= frame[sign].astype(bool).to_numpy().astype(np.int64) << k
        if len(spec.signs) > 62:
            raise ValueError(f"accuracy {spec.name!r}: at most 62 signs fit one pattern code")
        pattern_codes, pattern_values = codes_of(pd.Series(bits))
        cube = count_cube(w, (site_codes, len(site_values)), (pattern_codes, len(pattern_values)), (pos, 2))
        for scope in scopes:
            c = scoped(cube, scope)
            which, positive = np.nonzero(c)
            pattern = np.asarray(pattern_values, dtype=np.int64)[which]
            model_frame = pd.DataFrame(
                {sign: (pattern >> k) & 1 == 1 for k, sign in enumerate(spec.signs)}
                | {"_pos": positive == 1, "_w": c[which, positive]}
            )
            if model_frame["_pos"].nunique() < 2:
                continue
            rule = logistic_rule(model_frame, list(spec.signs), "_pos", "_w", plan.options.alpha)
            models.append(
                {"site_id": scope, "auc": rule.auc, "se": rule.auc_se, "ci_low": rule.auc_ci_low,
                 "ci_high": rule.auc_ci_high, "n": rule.n, "warnings": "; ".join(rule.warnings)}
            )  # fmt: skip
            coefs.append(rule.coefficients.assign(site_id=scope))
    out = [
        ResultTable(
            spec.name,
            spec.title,
            pd.concat(metrics, ignore_index=True).assign(analysis=spec.name, positive=spec.positive),
            (
                "Wilson score 95 % CIs for proportions; log-method CIs for likelihood ratios.",
                "PPV and NPV are at the sample's prevalence, not a clinic's.",
            ),
        )
    ]
    if models:
        out.append(
            ResultTable(
                f"{spec.name}_model",
                f"{spec.title}: multivariable logistic rule, ROC AUC (DeLong 95 % CI)",
                pd.DataFrame(models),
                ("In-sample AUC (optimistic); units of one patient are not independent.",),
            )
        )
        coef = pd.concat(coefs, ignore_index=True)
        out.append(
            ResultTable(
                f"{spec.name}_model_coefficients",
                f"{spec.title}: logistic coefficients",
                coef[["site_id", *[c for c in coef.columns if c != "site_id"]]],
            )
        )
    return out


def level_orders(plan: Plan) -> dict[str, tuple[str, ...]]:
    """The plan's order of levels: the groups (reference first), each derived variable's bins, and the
    modalities of each detection analysis (combined last)."""
    orders: dict[str, tuple[str, ...]] = {plan.groups.column: tuple(plan.groups.levels)}
    for d in plan.derived:
        orders[d.name] = tuple(b.label for b in d.bins)
    for det in plan.detection:
        orders[det.modality_column] = (*det.modalities, det.combined_label)
    return orders


def run_plan(plan: Plan, frames: Mapping[str, pd.DataFrame]) -> list[ResultTable]:
    """Every analysis of the plan, in plan order, as :class:`ResultTable` objects for the report."""
    return [replace(r, levels=level_orders(plan)) for r in _run(plan, frames)]


def _run(plan: Plan, frames: Mapping[str, pd.DataFrame]) -> list[ResultTable]:
    views: dict[str, pd.DataFrame] = dict(frames)
    for d in plan.derived:
        if d.view in views:
            views[d.view] = apply_derived(views[d.view], [d])
    results: list[ResultTable] = []
    g0, g1 = plan.groups.levels
    versus = f"{plan.groups.label(g1)} vs {plan.groups.label(g0)}"
    for cmp in plan.comparisons:
        table, forest = compare_groups(plan, cmp, _frame(views, cmp.view, f"comparison {cmp.name!r}"))
        results.append(ResultTable(cmp.name, cmp.title, table, (NOTE_COMPARE, NOTE_OR)))
        if cmp.forest and not forest.empty:
            results.append(
                ResultTable(
                    f"{cmp.name}_forest",
                    f"{cmp.title}: per-site and pooled effects ({versus})",
                    forest,
                    ("Odds ratios (binary), mean differences (continuous); pooled: MH, DL random effects.",),
                    kind="forest",
                )
            )
    for det in plan.detection:
        pat, notes = detection_patterns(plan, det, _frame(views, det.view, f"detection {det.name!r}"))
        tabs = detection_tables(plan, det, pat)
        results.append(
            ResultTable(f"{det.name}_rates", det.title, tabs["rates"], tuple(notes), kind="detection")
        )
        results.append(
            ResultTable(
                f"{det.name}_independent",
                f"{det.title}: modalities compared as independent samples (the paper's method)",
                tabs["independent"],
                ("Not valid for paired reads; shown to reproduce the paper. See the paired analysis.",),
            )
        )
        results.append(
            ResultTable(
                f"{det.name}_paired",
                f"{det.title}: Cochran's Q and pairwise McNemar (Holm-corrected)",
                tabs["paired"],
                (f"McNemar exact (binomial) below {plan.options.mcnemar_exact_below} discordant pairs.",),
            )
        )
    for acc in plan.accuracy:
        results.extend(_accuracy(plan, acc, _frame(views, acc.view, f"accuracy {acc.name!r}")))
    return results
