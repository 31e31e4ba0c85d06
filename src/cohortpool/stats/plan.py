"""The analysis plan: a reviewed YAML file that names groups, units, variables, their types and analyses.

The engine knows statistics, not studies: every study-specific name (columns, levels, labels, bins) comes
from the plan. Validation is strict (unknown keys are errors) so a typo in a plan fails loudly with the
file and the field, instead of silently dropping a variable from a table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: the analysis views a plan may read (docs/data_contract.md section 4), plus pre-aggregated forms
VIEWS = ("patients", "vertebra_reads", "vertebrae", "findings_long", "detection_patterns")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Groups(_Strict):
    """The two groups compared; the first level is the reference (effects are second minus first)."""

    column: str
    levels: tuple[str, str]
    labels: dict[str, str] = Field(default_factory=dict)

    def label(self, level: str) -> str:
        return self.labels.get(level, level)


class Bin(_Strict):
    """One interval of a derived categorical variable; missing bounds are open-ended."""

    label: str
    min: float | None = None
    min_inclusive: bool = True
    max: float | None = None
    max_inclusive: bool = False


class Derived(_Strict):
    """A categorical variable cut from a numeric column by explicit, gap-free intervals."""

    name: str
    view: str
    source: str
    bins: tuple[Bin, ...]

    @model_validator(mode="after")
    def _tile(self) -> Derived:
        # the paper's Genant boundaries (20-25 / 26-40) leave (25, 26) unclassified: insist on a tiling
        if self.bins[0].min is not None or self.bins[-1].max is not None:
            raise ValueError(f"derived {self.name!r}: first bin needs no min and last bin no max")
        for a, b in zip(self.bins, self.bins[1:], strict=False):
            if a.max is None or b.min is None or not math.isclose(a.max, b.min):
                raise ValueError(f"derived {self.name!r}: gap or overlap between {a.label!r} and {b.label!r}")
            if a.max_inclusive == b.min_inclusive:
                raise ValueError(
                    f"derived {self.name!r}: boundary {a.max} must belong to exactly one of "
                    f"{a.label!r} and {b.label!r}"
                )
        return self


class Variable(_Strict):
    """A variable of a comparison table."""

    column: str
    label: str = ""
    type: Literal["continuous", "categorical"]
    #: continuous: false -> Mann-Whitney U with median (IQR) is the headline
    normal: bool = True
    #: categorical: report only this level (binary variables, e.g. sex "M"); None -> every level
    level: str | bool | None = None
    decimals: int = 2

    @property
    def title(self) -> str:
        return self.label or self.column


class Comparison(_Strict):
    """One group-comparison table (the paper's Tables 1 and 2)."""

    name: str
    title: str
    view: str
    unit: str
    variables: tuple[Variable, ...]
    forest: bool = True


class Detection(_Strict):
    """Detection by modality (the paper's Table 3): rates, the paper's test and the paired tests."""

    name: str
    title: str
    view: str
    unit_keys: tuple[str, ...]
    modality_column: str = "modality"
    modalities: tuple[str, ...]
    combined_label: str = "ALL"
    #: the paper's comparison: these modality rows as if independent samples (chi-square by the rule)
    independent_modalities: tuple[str, ...] = ()
    findings: tuple[str, ...]


class Accuracy(_Strict):
    """Diagnostic accuracy of each sign for the ``positive`` group, and the multivariable rule."""

    name: str
    title: str
    view: str
    positive: str
    signs: tuple[str, ...]
    model: bool = True


class Options(_Strict):
    """Knobs of the methods (defaults are the documented ones)."""

    alpha: float = 0.05
    fisher_monte_carlo_samples: int = 100_000
    seed: int = 20251001
    mcnemar_exact_below: int = 25
    cmh_continuity_correction: bool = True


class Plan(_Strict):
    """A whole study plan."""

    name: str
    title: str
    site_column: str = "site_id"
    #: frequency-weight column a pre-aggregated frame may carry (absent: one row per unit)
    weight_column: str = "n_units"
    pooled_label: str = "ALL"
    groups: Groups
    options: Options = Field(default_factory=Options)
    derived: tuple[Derived, ...] = ()
    comparisons: tuple[Comparison, ...] = ()
    detection: tuple[Detection, ...] = ()
    accuracy: tuple[Accuracy, ...] = ()

    @model_validator(mode="after")
    def _views_known(self) -> Plan:
        items: list[Derived | Comparison | Detection | Accuracy] = [
            *self.derived, *self.comparisons, *self.detection, *self.accuracy
        ]  # fmt: skip
        for item in items:
            if item.view not in VIEWS:
                raise ValueError(f"{item.name!r}: view {item.view!r} is not one of {VIEWS}")
        analyses: list[Comparison | Detection | Accuracy] = [
            *self.comparisons,
            *self.detection,
            *self.accuracy,
        ]
        names = [x.name for x in analyses]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"analysis names must be unique, repeated: {dupes}")
        return self


class PlanError(ValueError):
    """A plan file that cannot be used, with the file and the field at fault."""


def parse_plan(data: dict[str, Any], source: str = "<plan>") -> Plan:
    """Validate a plan given as a mapping (e.g. from YAML)."""
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise PlanError(f"{source}: invalid analysis plan: {problems}") from exc


def load_plan(path: str | Path) -> Plan:
    """Read and validate a YAML plan file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PlanError(f"{p}: analysis plan not found") from exc
    except yaml.YAMLError as exc:
        raise PlanError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PlanError(f"{p}: an analysis plan must be a YAML mapping at the top level")
    return parse_plan(data, str(p))
