"""Group comparisons (the paper's Tables 1 and 2): per site as SPSS would, and pooled with site as stratum.

Output: one row per variable (per reported level for categorical variables) and site, plus the pooled rows
(``site_id`` = the plan's pooled label). Per-site rows use the SPSS-taught test; pooled rows use the
Cochran-Mantel-Haenszel test (categorical, one 2 x 2 per level: the level vs the rest) or the
DerSimonian-Laird random-effects mean difference (continuous), because pooling raw rows across hospitals
confounds the group with the site (Simpson's paradox).
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pandas as pd

from cohortpool.stats import format as fmt
from cohortpool.stats import tests as t
from cohortpool.stats.categorical import compare_categorical, sample_odds_ratio
from cohortpool.stats.continuous import compare_continuous, summarize
from cohortpool.stats.frames import as_keys, codes_of, count_cube, level_text, levels_of, sites_of, weights
from cohortpool.stats.plan import Comparison, Plan, Variable
from cohortpool.stats.pooled import cmh, dersimonian_laird, log_odds_ratio, mean_difference

Row = dict[str, Any]
Z95 = 1.959963984540054  # standard normal 97.5th percentile


def _exp(x: float) -> float:
    return math.exp(x) if math.isfinite(x) else math.nan


def _forest(label: str, site: str, est: float, lo: float, hi: float, weight: float, method: str) -> Row:
    """One forest-plot row (the report's "forest" contract plus the method that made it)."""
    return {
        "label": label,
        "site_id": site,
        "estimate": est,
        "ci_low": lo,
        "ci_high": hi,
        "weight": weight,
        "is_pooled": method != "site",
        "method": method,
    }


def _base(plan: Plan, spec: Comparison, site: str, var: Variable, level: str) -> Row:
    return {
        "analysis": spec.name,
        "unit": spec.unit,
        "site_id": site,
        "variable": var.column,
        "label": var.title,
        "level": level,
    }


def _stat(row: Row, test: str, stat: float, df: float, p: float, warnings: list[str]) -> Row:
    row.update(
        test=test, statistic=stat, df=df, p_value=p, p_display=fmt.format_p(p), warnings="; ".join(warnings)
    )
    return row


def _continuous_rows(plan: Plan, spec: Comparison, var: Variable, frame: pd.DataFrame, sites: list[str]):  # type: ignore[no-untyped-def]
    g0, g1 = plan.groups.levels
    gcol, w = plan.groups.column, weights(frame, plan)
    rows: list[Row] = []
    forest: list[Row] = []
    effects, variances = [], []

    raw = pd.to_numeric(frame[var.column], errors="coerce").to_numpy(dtype=float)
    ww = w.to_numpy()
    by_site = _site_keys(frame, plan)
    positions = pd.Series(np.arange(len(frame)), index=frame.index)
    grouped = positions.groupby([by_site, frame[gcol]], observed=True).indices
    cells: dict[tuple[str, str], np.ndarray] = {}
    for key, idx in grouped.items():
        site_key, group_key = cast(tuple[object, object], key)
        cells[(str(site_key), str(group_key))] = np.asarray(idx)
    none = np.array([], dtype=np.int64)

    def values(site: str | None, group: str) -> np.ndarray:
        """Unit-level values of a group at one site (None: every site)."""
        if site is None:
            idx = np.concatenate([v for (_, g), v in sorted(cells.items()) if g == group] or [none])
        else:
            idx = cells.get((site, group), none)
        x, k = raw[idx], ww[idx]
        ok = np.isfinite(x)
        return np.repeat(x[ok], k[ok])

    def describe(row: Row, a: np.ndarray, b: np.ndarray) -> None:
        for g, x in ((g0, a), (g1, b)):
            s = summarize(x)
            row[f"n_{g}"] = s.n
            row[f"summary_{g}"] = (
                fmt.mean_sd(s.mean, s.sd, var.decimals)
                if var.normal
                else fmt.median_iqr(s.median, s.q1, s.q3, var.decimals)
            )
            row[f"count_{g}"] = math.nan

    for site in sites:
        a, b = values(site, g0), values(site, g1)
        r = compare_continuous(a, b, normal=var.normal, alpha=plan.options.alpha)
        row = _base(plan, spec, site, var, "")
        describe(row, a, b)
        row.update(
            estimate=r.mean_difference, ci_low=r.md_ci_low, ci_high=r.md_ci_high,
            estimate_kind="mean_difference", welch_t=r.welch_t, welch_df=r.welch_df, welch_p=r.welch_p,
            levene_f=r.levene_f, levene_p=r.levene_p, mann_whitney_u=r.mann_whitney_u,
            mann_whitney_p=r.mann_whitney_p,
        )  # fmt: skip
        rows.append(_stat(row, r.test, r.statistic, r.df, r.p_value, list(r.warnings)))
        s0, s1 = r.summaries
        md, v = mean_difference(s0.n, s0.mean, s0.sd, s1.n, s1.mean, s1.sd)
        effects.append(md)
        variances.append(v)
    a, b = values(None, g0), values(None, g1)
    row = _base(plan, spec, plan.pooled_label, var, "")
    describe(row, a, b)
    if len(sites) <= 1:  # one cohort: the SPSS comparison is the whole answer, nothing to pool
        r = compare_continuous(a, b, normal=var.normal, alpha=plan.options.alpha)
        row.update(estimate=r.mean_difference, ci_low=r.md_ci_low, ci_high=r.md_ci_high,
                   estimate_kind="mean_difference", welch_t=r.welch_t, welch_df=r.welch_df,
                   welch_p=r.welch_p, levene_f=r.levene_f, levene_p=r.levene_p,
                   mann_whitney_u=r.mann_whitney_u, mann_whitney_p=r.mann_whitney_p)  # fmt: skip
        rows.append(_stat(row, r.test, r.statistic, r.df, r.p_value, list(r.warnings)))
        return rows, forest
    meta = dersimonian_laird(np.array(effects), np.array(variances), plan.options.alpha)
    z = meta.estimate / meta.se if meta.se and math.isfinite(meta.se) else math.nan
    row.update(
        estimate=meta.estimate, ci_low=meta.ci_low, ci_high=meta.ci_high,
        estimate_kind="mean_difference_random_effects", heterogeneity_test="cochran_q",
        heterogeneity_stat=meta.q, heterogeneity_p=meta.q_p, i2=meta.i2, tau2=meta.tau2,
    )  # fmt: skip
    rows.append(_stat(row, t.RANDOM_EFFECTS_MD, z, math.nan, meta.p_value, list(meta.warnings)))
    for site, est, var_, wt in zip(sites, effects, variances, meta.weights, strict=True):
        half = Z95 * math.sqrt(var_) if math.isfinite(var_) else math.nan
        forest.append(_forest(var.title, site, est, est - half, est + half, wt, "site"))
    forest.append(
        _forest(
            var.title, plan.pooled_label, meta.estimate, meta.ci_low, meta.ci_high, 100.0, "dersimonian_laird"
        )
    )
    for f in forest:
        f["measure"] = "mean_difference"
    return rows, forest


def _site_keys(frame: pd.DataFrame, plan: Plan) -> pd.Series:
    """Each row's site as text (the pooled label when the frame has no site column)."""
    if plan.site_column in frame.columns:
        return frame[plan.site_column]  # a categorical of text after as_keys
    return pd.Series(plan.pooled_label, index=frame.index)


def _count_tables(
    frame: pd.DataFrame, plan: Plan, var: Variable, levels: list[object], sites: list[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """groups x levels count tables per site and over all sites, from one pass over the rows."""
    site_codes, site_values = codes_of(_site_keys(frame, plan))
    group_codes, group_values = codes_of(frame[plan.groups.column])
    level_codes, level_values = codes_of(frame[var.column])
    cube = count_cube(
        weights(frame, plan),
        (site_codes, len(site_values)),
        (group_codes, len(group_values)),
        (level_codes, len(level_values)),
    )
    g_pos = [group_values.index(g) if g in group_values else -1 for g in plan.groups.levels]
    l_pos = [level_values.index(lv) if lv in level_values else -1 for lv in levels]

    def table(block: np.ndarray) -> np.ndarray:
        out = np.zeros((2, len(levels)), dtype=np.int64)
        for i, gi in enumerate(g_pos):
            for j, lj in enumerate(l_pos):
                if gi >= 0 and lj >= 0:
                    out[i, j] = block[gi, lj]
        return out

    tables = {str(s): table(cube[k]) for k, s in enumerate(site_values) if str(s) in sites}
    for site in sites:
        tables.setdefault(site, np.zeros((2, len(levels)), dtype=np.int64))
    return tables, table(cube.sum(axis=0))


def _categorical_rows(plan: Plan, spec: Comparison, var: Variable, frame: pd.DataFrame, sites: list[str]):  # type: ignore[no-untyped-def]
    g0, g1 = plan.groups.levels
    col = frame[var.column]
    if isinstance(var.level, bool):
        col = col.astype("boolean")
        frame = frame.assign(**{var.column: col})
    levels = levels_of(col)
    report = [lv for lv in levels if var.level is None or lv == var.level]
    if var.level is not None and not report:
        report = [var.level]
        levels = [*levels, var.level]
    rows: list[Row] = []
    forest: list[Row] = []
    strata: dict[str, list[np.ndarray]] = {level_text(lv): [] for lv in report}

    def add_rows(site: str, tab: np.ndarray, res: Any, pooled: bool) -> None:
        for lv in report:
            j = levels.index(lv)
            two = np.stack([tab.sum(axis=1) - tab[:, j], tab[:, j]], axis=1)
            row = _base(plan, spec, site, var, level_text(lv))
            for i, g in enumerate((g0, g1)):
                total = int(tab[i].sum())
                row[f"n_{g}"], row[f"count_{g}"] = total, int(tab[i, j])
                row[f"summary_{g}"] = fmt.count_percent(int(tab[i, j]), total, var.decimals)
            if pooled:
                continue
            strata[level_text(lv)].append(two)
            orr, lo, hi, corrected = sample_odds_ratio(two, plan.options.alpha)
            row.update(estimate=orr, ci_low=lo, ci_high=hi, estimate_kind="odds_ratio_sample")
            warn = list(res.warnings)
            if corrected and len(levels) > 2:
                warn.append("zero cell: odds ratio with 0.5 added to every cell")
            rows.append(_stat(row, res.test, res.statistic, res.df, res.p_value, warn))

    opts = plan.options
    tables, all_tab = _count_tables(frame, plan, var, levels, sites)
    for site in sites:
        tab = tables[site]
        res = compare_categorical(tab, seed=opts.seed, samples=opts.fisher_monte_carlo_samples)
        add_rows(site, tab, res, False)
    if len(sites) <= 1:  # one cohort: nothing to pool
        res = compare_categorical(all_tab, seed=opts.seed, samples=opts.fisher_monte_carlo_samples)
        add_rows(plan.pooled_label, all_tab, res, False)
        return rows, forest
    for lv in report:
        key = level_text(lv)
        j = levels.index(lv)
        two = np.stack([all_tab.sum(axis=1) - all_tab[:, j], all_tab[:, j]], axis=1)
        row = _base(plan, spec, plan.pooled_label, var, key)
        for i, g in enumerate((g0, g1)):
            row[f"n_{g}"], row[f"count_{g}"] = int(all_tab[i].sum()), int(two[i, 1])
            row[f"summary_{g}"] = fmt.count_percent(int(two[i, 1]), int(all_tab[i].sum()), var.decimals)
        st = np.stack(strata[key])
        c = cmh(st, correct=opts.cmh_continuity_correction, alpha=opts.alpha)
        row.update(
            estimate=c.odds_ratio, ci_low=c.ci_low, ci_high=c.ci_high,
            estimate_kind="odds_ratio_mantel_haenszel",
            heterogeneity_test="breslow_day_tarone", heterogeneity_stat=c.breslow_day,
            heterogeneity_p=c.breslow_day_p,
        )  # fmt: skip
        logs = [log_odds_ratio(s) for s in st]
        meta = dersimonian_laird(np.array([x[0] for x in logs]), np.array([x[1] for x in logs]), opts.alpha)
        row.update(
            i2=meta.i2,
            tau2=meta.tau2,
            re_odds_ratio=_exp(meta.estimate),
            re_ci_low=_exp(meta.ci_low),
            re_ci_high=_exp(meta.ci_high),
        )
        rows.append(_stat(row, t.CMH, c.statistic, c.df, c.p_value, list(c.warnings)))
        label = var.title if len(report) == 1 else f"{var.title}: {key}"
        for site, (lor, v, _corr), wt in zip(sites, logs, meta.weights, strict=True):
            half = Z95 * math.sqrt(v) if math.isfinite(v) else math.nan
            forest.append(_forest(label, site, _exp(lor), _exp(lor - half), _exp(lor + half), wt, "site"))
        pooled = plan.pooled_label
        forest.append(_forest(label, pooled, c.odds_ratio, c.ci_low, c.ci_high, math.nan, "mantel_haenszel"))
        if math.isfinite(meta.estimate):
            forest.append(
                _forest(label, pooled, _exp(meta.estimate), _exp(meta.ci_low), _exp(meta.ci_high), 100.0,
                        "dersimonian_laird")
            )  # fmt: skip
    for f in forest:
        f["measure"] = "odds_ratio"
    return rows, forest


def compare_groups(plan: Plan, spec: Comparison, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The comparison table and its forest-plot frame for one plan comparison."""
    gcol = plan.groups.column
    missing = [c for c in (gcol, *(v.column for v in spec.variables)) if c not in frame.columns]
    if missing:
        raise KeyError(f"comparison {spec.name!r}: view {spec.view!r} lacks columns {missing}")
    frame = as_keys(frame[frame[gcol].isin(plan.groups.levels)], [plan.site_column, gcol])
    sites = sites_of(frame, plan)
    rows: list[Row] = []
    forest: list[Row] = []
    for var in spec.variables:
        fn = _continuous_rows if var.type == "continuous" else _categorical_rows
        r, f = fn(plan, spec, var, frame, sites)
        rows.extend(r)
        forest.extend(f)
    table = pd.DataFrame(rows)
    order = {s: i for i, s in enumerate([*sites, plan.pooled_label])}
    table = table.sort_values("site_id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    return table, pd.DataFrame(forest)
