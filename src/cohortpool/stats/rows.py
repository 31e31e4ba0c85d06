"""Typed rows of a group-comparison table and of its forest-plot frame.

:mod:`cohortpool.stats.compare` builds these; :func:`comparison_frame` and :func:`forest_frame` turn them
into the DataFrames of :class:`~cohortpool.stats.result.ResultTable` (the report's contract), with the
columns in one documented order whatever the mix of variables. A part a row does not have (the Welch and
Levene columns of a categorical row, the heterogeneity of a per-site row) is ``None`` here and an empty
cell in the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cohortpool.stats import format as fmt


@dataclass(frozen=True)
class GroupCells:
    """One group's cells: its size, the level's count (NaN for a continuous variable) and the summary."""

    n: int
    count: float
    summary: str


@dataclass(frozen=True)
class Effect:
    """The row's effect estimate (second group vs reference) with its CI and what kind of estimate it is."""

    estimate: float
    ci_low: float
    ci_high: float
    kind: str


@dataclass(frozen=True)
class TestCells:
    """The headline test of the row."""

    test: str
    statistic: float
    df: float
    p_value: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpssCells:
    """What SPSS prints beside a continuous comparison: Welch's t, Levene's F, Mann-Whitney U."""

    welch_t: float
    welch_df: float
    welch_p: float
    levene_f: float
    levene_p: float
    mann_whitney_u: float
    mann_whitney_p: float


@dataclass(frozen=True)
class Heterogeneity:
    """Between-site heterogeneity of a pooled row."""

    test: str
    statistic: float
    p_value: float
    i2: float
    tau2: float


@dataclass(frozen=True)
class RandomEffectsOdds:
    """The DerSimonian-Laird pooled odds ratio beside a Mantel-Haenszel one."""

    odds_ratio: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ComparisonRow:
    """One variable (one reported level) at one site, or pooled."""

    analysis: str
    unit: str
    site_id: str
    variable: str
    label: str
    level: str
    #: (group level, its cells), reference group first
    groups: tuple[tuple[str, GroupCells], ...]
    test: TestCells
    effect: Effect | None = None
    heterogeneity: Heterogeneity | None = None
    random_effects: RandomEffectsOdds | None = None
    spss: SpssCells | None = None

    def record(self) -> dict[str, Any]:
        """The row as a frame record: only the columns this row has."""
        out: dict[str, Any] = {
            "analysis": self.analysis,
            "unit": self.unit,
            "site_id": self.site_id,
            "variable": self.variable,
            "label": self.label,
            "level": self.level,
        }
        for group, cells in self.groups:
            out |= {f"n_{group}": cells.n, f"count_{group}": cells.count, f"summary_{group}": cells.summary}
        if self.effect is not None:
            e = self.effect
            out |= {"estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high, "estimate_kind": e.kind}
        t = self.test
        out |= {
            "test": t.test,
            "statistic": t.statistic,
            "df": t.df,
            "p_value": t.p_value,
            "p_display": fmt.format_p(t.p_value),
            "warnings": "; ".join(t.warnings),
        }
        if self.heterogeneity is not None:
            h = self.heterogeneity
            out |= {
                "heterogeneity_test": h.test,
                "heterogeneity_stat": h.statistic,
                "heterogeneity_p": h.p_value,
                "i2": h.i2,
                "tau2": h.tau2,
            }
        if self.random_effects is not None:
            r = self.random_effects
            out |= {"re_odds_ratio": r.odds_ratio, "re_ci_low": r.ci_low, "re_ci_high": r.ci_high}
        if self.spss is not None:
            out |= {name: getattr(self.spss, name) for name in SPSS_COLUMNS}
        return out


SPSS_COLUMNS: tuple[str, ...] = (
    "welch_t",
    "welch_df",
    "welch_p",
    "levene_f",
    "levene_p",
    "mann_whitney_u",
    "mann_whitney_p",
)


def comparison_columns(groups: Sequence[str]) -> list[str]:
    """Every column a comparison frame can have, in the order it is written."""
    per_group = [f"{k}_{g}" for g in groups for k in ("n", "count", "summary")]
    return [
        "analysis",
        "unit",
        "site_id",
        "variable",
        "label",
        "level",
        *per_group,
        "estimate",
        "ci_low",
        "ci_high",
        "estimate_kind",
        "test",
        "statistic",
        "df",
        "p_value",
        "p_display",
        "warnings",
        "heterogeneity_test",
        "heterogeneity_stat",
        "heterogeneity_p",
        "i2",
        "tau2",
        "re_odds_ratio",
        "re_ci_low",
        "re_ci_high",
        *SPSS_COLUMNS,
    ]


def comparison_frame(rows: Sequence[ComparisonRow], groups: Sequence[str]) -> pd.DataFrame:
    """The rows as a frame: the columns some row has, in :func:`comparison_columns` order."""
    frame = pd.DataFrame([r.record() for r in rows])
    return frame[[c for c in comparison_columns(groups) if c in frame.columns]]


@dataclass(frozen=True)
class ForestRow:
    """One row of a forest plot: a site's estimate, or a pooled one (``method`` names how it was pooled)."""

    label: str
    site_id: str
    estimate: float
    ci_low: float
    ci_high: float
    weight: float
    #: "site", or the pooling method ("mantel_haenszel", "dersimonian_laird")
    method: str
    #: "odds_ratio" or "mean_difference"
    measure: str

    def record(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "site_id": self.site_id,
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "weight": self.weight,
            "is_pooled": self.method != "site",
            "method": self.method,
            "measure": self.measure,
        }


def forest_frame(rows: Sequence[ForestRow]) -> pd.DataFrame:
    """The forest rows as a frame (empty, without columns, when there are none)."""
    return pd.DataFrame([r.record() for r in rows])


@dataclass
class VariableRows:
    """What one variable adds to a comparison: table rows and forest rows."""

    rows: list[ComparisonRow] = field(default_factory=list)
    forest: list[ForestRow] = field(default_factory=list)
