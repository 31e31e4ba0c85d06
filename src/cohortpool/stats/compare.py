"""Group comparisons (the paper's Tables 1 and 2): per site as SPSS would, and pooled with site as stratum.

Output: one row per variable (per reported level for categorical variables) and site, plus the pooled rows
(``site_id`` = the plan's pooled label). Per-site rows use the SPSS-taught test; pooled rows use the
Cochran-Mantel-Haenszel test (categorical, one 2 x 2 per level: the level vs the rest) or the
DerSimonian-Laird random-effects mean difference (continuous), because pooling raw rows across hospitals
confounds the group with the site (Simpson's paradox).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from cohortpool.stats import format as fmt
from cohortpool.stats import tests as t
from cohortpool.stats.categorical import (
    ZERO_MARGIN,
    CategoricalResult,
    compare_categorical,
    sample_odds_ratio,
)
from cohortpool.stats.continuous import ContinuousResult, compare_continuous, summarize
from cohortpool.stats.frames import as_keys, codes_of, count_cube, level_text, levels_of, sites_of, weights
from cohortpool.stats.plan import Comparison, Plan, Variable
from cohortpool.stats.pooled import MetaResult, cmh, dersimonian_laird, log_odds_ratio, mean_difference
from cohortpool.stats.rows import (
    ComparisonRow,
    Effect,
    ForestRow,
    GroupCells,
    Heterogeneity,
    RandomEffectsOdds,
    SpssCells,
    TestCells,
    VariableRows,
    comparison_frame,
    forest_frame,
)

Z95 = 1.959963984540054  # standard normal 97.5th percentile
_NONE = np.array([], dtype=np.int64)


def _exp(x: float) -> float:
    return math.exp(x) if math.isfinite(x) else math.nan


def _row(
    spec: Comparison,
    site: str,
    var: Variable,
    level: str,
    groups: tuple[tuple[str, GroupCells], ...],
    test: TestCells,
    *,
    effect: Effect | None = None,
    heterogeneity: Heterogeneity | None = None,
    random_effects: RandomEffectsOdds | None = None,
    spss: SpssCells | None = None,
) -> ComparisonRow:
    """A row of this comparison and variable (the fields every row shares filled in)."""
    return ComparisonRow(
        analysis=spec.name,
        unit=spec.unit,
        site_id=site,
        variable=var.column,
        label=var.title,
        level=level,
        groups=groups,
        test=test,
        effect=effect,
        heterogeneity=heterogeneity,
        random_effects=random_effects,
        spss=spss,
    )


def _site_keys(frame: pd.DataFrame, plan: Plan) -> pd.Series:
    """Each row's site as text (the pooled label when the frame has no site column)."""
    if plan.site_column in frame.columns:
        return frame[plan.site_column]  # a categorical of text after as_keys
    return pd.Series(plan.pooled_label, index=frame.index)


# --- continuous variables ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _UnitValues:
    """A continuous variable's unit-level values, findable by (site, group) without copying the frame."""

    values: npt.NDArray[np.float64]
    weights: npt.NDArray[np.int64]
    #: (site, group) -> positions of its rows
    cells: dict[tuple[str, str], npt.NDArray[np.int64]]

    @classmethod
    def of(cls, plan: Plan, var: Variable, frame: pd.DataFrame) -> _UnitValues:
        positions = pd.Series(np.arange(len(frame)), index=frame.index)
        grouped = positions.groupby(
            [_site_keys(frame, plan), frame[plan.groups.column]], observed=True
        ).indices
        cells: dict[tuple[str, str], npt.NDArray[np.int64]] = {}
        for key, idx in grouped.items():
            site_key, group_key = cast(tuple[object, object], key)
            cells[(str(site_key), str(group_key))] = np.asarray(idx, dtype=np.int64)
        raw = pd.to_numeric(frame[var.column], errors="coerce").to_numpy(dtype=float)
        return cls(raw, weights(frame, plan).to_numpy(dtype=np.int64), cells)

    def of_group(self, site: str | None, group: str) -> npt.NDArray[np.float64]:
        """The unit-level values (each row repeated by its weight) of a group at a site, or everywhere."""
        if site is None:
            parts = [v for (_, g), v in sorted(self.cells.items()) if g == group]
            idx = np.concatenate(parts) if parts else _NONE
        else:
            idx = self.cells.get((site, group), _NONE)
        x, k = self.values[idx], self.weights[idx]
        ok = np.isfinite(x)
        return np.repeat(x[ok], k[ok])


def _described(
    plan: Plan, var: Variable, first: npt.NDArray[np.float64], second: npt.NDArray[np.float64]
) -> tuple[tuple[str, GroupCells], ...]:
    """Each group's n and mean ± SD (or median (IQR) for a variable declared non-normal)."""
    cells = []
    for group, x in zip(plan.groups.levels, (first, second), strict=True):
        s = summarize(x)
        if var.normal:
            text = fmt.mean_sd(s.mean, s.sd, var.decimals)
        else:
            text = fmt.median_iqr(s.median, s.q1, s.q3, var.decimals)
        cells.append((group, GroupCells(s.n, math.nan, text)))
    return tuple(cells)


def _spss_row(
    spec: Comparison,
    site: str,
    var: Variable,
    groups: tuple[tuple[str, GroupCells], ...],
    r: ContinuousResult,
) -> ComparisonRow:
    """A continuous comparison as SPSS reports it: the headline test, the mean difference, Welch beside."""
    return _row(
        spec,
        site,
        var,
        "",
        groups,
        TestCells(r.test, r.statistic, r.df, r.p_value, r.warnings),
        effect=Effect(r.mean_difference, r.md_ci_low, r.md_ci_high, "mean_difference"),
        spss=SpssCells(
            r.welch_t, r.welch_df, r.welch_p, r.levene_f, r.levene_p, r.mann_whitney_u, r.mann_whitney_p
        ),
    )


def _pooled_mean_difference(
    spec: Comparison, label: str, var: Variable, groups: tuple[tuple[str, GroupCells], ...], meta: MetaResult
) -> ComparisonRow:
    z = meta.estimate / meta.se if meta.se and math.isfinite(meta.se) else math.nan
    return _row(
        spec,
        label,
        var,
        "",
        groups,
        TestCells(t.RANDOM_EFFECTS_MD, z, math.nan, meta.p_value, meta.warnings),
        effect=Effect(meta.estimate, meta.ci_low, meta.ci_high, "mean_difference_random_effects"),
        heterogeneity=Heterogeneity("cochran_q", meta.q, meta.q_p, meta.i2, meta.tau2),
    )


def _continuous_rows(
    plan: Plan, spec: Comparison, var: Variable, frame: pd.DataFrame, sites: list[str]
) -> VariableRows:
    """Per site: the SPSS comparison; pooled: DerSimonian-Laird random-effects mean difference."""
    reference, other = plan.groups.levels
    units = _UnitValues.of(plan, var, frame)
    out = VariableRows()
    effects: list[float] = []
    variances: list[float] = []
    for site in sites:
        first, second = units.of_group(site, reference), units.of_group(site, other)
        result = compare_continuous(first, second, normal=var.normal, alpha=plan.options.alpha)
        out.rows.append(_spss_row(spec, site, var, _described(plan, var, first, second), result))
        s0, s1 = result.summaries
        md, variance = mean_difference(s0.n, s0.mean, s0.sd, s1.n, s1.mean, s1.sd)
        effects.append(md)
        variances.append(variance)
    first, second = units.of_group(None, reference), units.of_group(None, other)
    groups = _described(plan, var, first, second)
    if len(sites) <= 1:  # one cohort: the SPSS comparison is the whole answer, nothing to pool
        result = compare_continuous(first, second, normal=var.normal, alpha=plan.options.alpha)
        out.rows.append(_spss_row(spec, plan.pooled_label, var, groups, result))
        return out
    meta = dersimonian_laird(np.array(effects), np.array(variances), plan.options.alpha)
    out.rows.append(_pooled_mean_difference(spec, plan.pooled_label, var, groups, meta))
    for site, estimate, variance, weight in zip(sites, effects, variances, meta.weights, strict=True):
        # no variation within either group: the difference is exact and has no interval (not a 0-width one)
        half = Z95 * math.sqrt(variance) if math.isfinite(variance) and variance > 0 else math.nan
        out.forest.append(
            ForestRow(
                var.title, site, estimate, estimate - half, estimate + half, weight, "site", "mean_difference"
            )
        )
    out.forest.append(
        ForestRow(
            var.title,
            plan.pooled_label,
            meta.estimate,
            meta.ci_low,
            meta.ci_high,
            100.0,
            "dersimonian_laird",
            "mean_difference",
        )
    )
    return out


# --- categorical variables -----------------------------------------------------------------------------


def _count_tables(
    frame: pd.DataFrame, plan: Plan, var: Variable, levels: list[object], sites: list[str]
) -> tuple[dict[str, npt.NDArray[np.int64]], npt.NDArray[np.int64]]:
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
    group_at = [group_values.index(g) if g in group_values else -1 for g in plan.groups.levels]
    level_at = [level_values.index(lv) if lv in level_values else -1 for lv in levels]

    def table(block: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        out = np.zeros((2, len(levels)), dtype=np.int64)
        for i, gi in enumerate(group_at):
            for j, lj in enumerate(level_at):
                if gi >= 0 and lj >= 0:
                    out[i, j] = block[gi, lj]
        return out

    tables = {str(s): table(cube[k]) for k, s in enumerate(site_values) if str(s) in sites}
    for site in sites:
        tables.setdefault(site, np.zeros((2, len(levels)), dtype=np.int64))
    return tables, table(cube.sum(axis=0))


@dataclass(frozen=True)
class _Levels:
    """A categorical variable's levels, and those reported (the plan's level, or every level)."""

    all: list[object]
    reported: list[object]

    @classmethod
    def of(cls, var: Variable, column: pd.Series) -> _Levels:
        levels = levels_of(column)
        reported = [lv for lv in levels if var.level is None or lv == var.level]
        if var.level is not None and not reported:  # the plan's level never occurs: report it as 0
            return cls([*levels, var.level], [var.level])
        return cls(levels, reported)


def _level_vs_rest(table: npt.NDArray[np.int64], j: int) -> npt.NDArray[np.int64]:
    """One level against all the others: [[ref rest, ref level], [other rest, other level]]."""
    return np.stack([table.sum(axis=1) - table[:, j], table[:, j]], axis=1)


def _counted(
    plan: Plan, var: Variable, table: npt.NDArray[np.int64], j: int
) -> tuple[tuple[str, GroupCells], ...]:
    """Each group's size, the level's count and ``n (%)``."""
    cells = []
    for i, group in enumerate(plan.groups.levels):
        total, count = int(table[i].sum()), int(table[i, j])
        cells.append((group, GroupCells(total, count, fmt.count_percent(count, total, var.decimals))))
    return tuple(cells)


def _site_level_rows(
    plan: Plan,
    spec: Comparison,
    var: Variable,
    site: str,
    table: npt.NDArray[np.int64],
    levels: _Levels,
) -> list[ComparisonRow]:
    """The SPSS test of the whole table, and per reported level its sample odds ratio (level vs rest)."""
    opts = plan.options
    result: CategoricalResult = compare_categorical(
        table, seed=opts.seed, samples=opts.fisher_monte_carlo_samples
    )
    rows = []
    for level in levels.reported:
        j = levels.all.index(level)
        odds, low, high, corrected = sample_odds_ratio(_level_vs_rest(table, j), opts.alpha)
        warnings = list(result.warnings)
        if corrected and len(levels.all) > 2:
            warnings.append("zero cell: odds ratio with 0.5 added to every cell")
        if math.isnan(odds) and not warnings:  # the test of the whole table stands; this level has no OR
            warnings.append(ZERO_MARGIN)
        test = TestCells(result.test, result.statistic, result.df, result.p_value, tuple(warnings))
        effect = Effect(odds, low, high, "odds_ratio_sample")
        rows.append(
            _row(spec, site, var, level_text(level), _counted(plan, var, table, j), test, effect=effect)
        )
    return rows


def _pooled_level(
    plan: Plan,
    spec: Comparison,
    var: Variable,
    level: str,
    pooled_table: npt.NDArray[np.int64],
    j: int,
    strata: npt.NDArray[np.int64],
    sites: list[str],
    label: str,
) -> VariableRows:
    """One level pooled over sites: CMH with the MH odds ratio, Breslow-Day-Tarone, DL odds ratio; and
    its forest rows (each site's log OR, the MH and the DL pooled ORs)."""
    opts = plan.options
    mh = cmh(strata, correct=opts.cmh_continuity_correction, alpha=opts.alpha)
    logs = [log_odds_ratio(s) for s in strata]
    meta = dersimonian_laird(np.array([x[0] for x in logs]), np.array([x[1] for x in logs]), opts.alpha)
    row = _row(
        spec,
        plan.pooled_label,
        var,
        level,
        _counted(plan, var, pooled_table, j),
        TestCells(t.CMH, mh.statistic, mh.df, mh.p_value, mh.warnings),
        effect=Effect(mh.odds_ratio, mh.ci_low, mh.ci_high, "odds_ratio_mantel_haenszel"),
        heterogeneity=Heterogeneity(
            "breslow_day_tarone", mh.breslow_day, mh.breslow_day_p, meta.i2, meta.tau2
        ),
        random_effects=RandomEffectsOdds(_exp(meta.estimate), _exp(meta.ci_low), _exp(meta.ci_high)),
    )
    out = VariableRows(rows=[row])
    for site, (log_or, variance, _corrected), weight in zip(sites, logs, meta.weights, strict=True):
        # no variation within either group: the difference is exact and has no interval (not a 0-width one)
        half = Z95 * math.sqrt(variance) if math.isfinite(variance) and variance > 0 else math.nan
        low, high = _exp(log_or - half), _exp(log_or + half)
        out.forest.append(ForestRow(label, site, _exp(log_or), low, high, weight, "site", "odds_ratio"))
    pooled = plan.pooled_label
    out.forest.append(
        ForestRow(
            label, pooled, mh.odds_ratio, mh.ci_low, mh.ci_high, math.nan, "mantel_haenszel", "odds_ratio"
        )
    )
    if math.isfinite(meta.estimate):
        estimate, low, high = _exp(meta.estimate), _exp(meta.ci_low), _exp(meta.ci_high)
        out.forest.append(
            ForestRow(label, pooled, estimate, low, high, 100.0, "dersimonian_laird", "odds_ratio")
        )
    return out


def _categorical_rows(
    plan: Plan, spec: Comparison, var: Variable, frame: pd.DataFrame, sites: list[str]
) -> VariableRows:
    """Per site: the SPSS test and sample ORs; pooled: CMH per reported level (that level vs the rest)."""
    column = frame[var.column]
    if isinstance(var.level, bool):
        column = column.astype("boolean")
        frame = frame.assign(**{var.column: column})
    levels = _Levels.of(var, column)
    tables, pooled_table = _count_tables(frame, plan, var, levels.all, sites)
    out = VariableRows()
    for site in sites:
        out.rows += _site_level_rows(plan, spec, var, site, tables[site], levels)
    if len(sites) <= 1:  # one cohort: nothing to pool
        out.rows += _site_level_rows(plan, spec, var, plan.pooled_label, pooled_table, levels)
        return out
    for level in levels.reported:
        j = levels.all.index(level)
        strata = np.stack([_level_vs_rest(tables[site], j) for site in sites])
        key = level_text(level)
        label = var.title if len(levels.reported) == 1 else f"{var.title}: {key}"
        pooled = _pooled_level(plan, spec, var, key, pooled_table, j, strata, sites, label)
        out.rows += pooled.rows
        out.forest += pooled.forest
    return out


def compare_groups(plan: Plan, spec: Comparison, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The comparison table and its forest-plot frame for one plan comparison."""
    gcol = plan.groups.column
    missing = [c for c in (gcol, *(v.column for v in spec.variables)) if c not in frame.columns]
    if missing:
        raise KeyError(f"comparison {spec.name!r}: view {spec.view!r} lacks columns {missing}")
    frame = as_keys(frame[frame[gcol].isin(plan.groups.levels)], [plan.site_column, gcol])
    sites = sites_of(frame, plan)
    rows: list[ComparisonRow] = []
    forest: list[ForestRow] = []
    for var in spec.variables:
        compare = _continuous_rows if var.type == "continuous" else _categorical_rows
        found = compare(plan, spec, var, frame, sites)
        rows += found.rows
        forest += found.forest
    table = comparison_frame(rows, plan.groups.levels)
    order = {s: i for i, s in enumerate([*sites, plan.pooled_label])}
    table = table.sort_values("site_id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    return table, forest_frame(forest)
