"""Small helpers shared by the analyses: frequency weights, derived variables, level handling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from cohortpool.stats.plan import Derived, Plan


def weights(frame: pd.DataFrame, plan: Plan) -> pd.Series:
    """Units each row stands for: the plan's weight column of a pre-aggregated frame, else 1."""
    if plan.weight_column in frame.columns:
        return frame[plan.weight_column].astype("int64")
    return pd.Series(np.ones(len(frame), dtype="int64"), index=frame.index)


def expand(values: pd.Series, w: pd.Series) -> npt.NDArray[np.float64]:
    """Values repeated by their weights, NaNs dropped (continuous tests need the unit-level values)."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    ww = w.to_numpy()
    ok = np.isfinite(v)
    return np.repeat(v[ok], ww[ok])


def level_text(value: object) -> str:
    """How a level is printed: booleans as yes/no (as the site tables wrote them), others as text."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    return str(value)


def apply_derived(frame: pd.DataFrame, derived: Sequence[Derived]) -> pd.DataFrame:
    """Add each derived categorical column (ordered by its bins); values outside every bin are NaN."""
    out = frame
    for d in derived:
        if d.source not in frame.columns:
            raise KeyError(f"derived variable {d.name!r} needs column {d.source!r}, which the view lacks")
        x = pd.to_numeric(frame[d.source], errors="coerce").to_numpy(dtype=float)
        label = np.full(len(x), None, dtype=object)
        for b in d.bins:
            ok = np.isfinite(x)
            if b.min is not None:
                ok &= (x >= b.min) if b.min_inclusive else (x > b.min)
            if b.max is not None:
                ok &= (x <= b.max) if b.max_inclusive else (x < b.max)
            label[ok] = b.label
        out = out.assign(
            **{d.name: pd.Categorical(label, categories=[b.label for b in d.bins], ordered=True)}
        )
    return out


def levels_of(series: pd.Series) -> list[object]:
    """The levels of a categorical column in a stable order (categorical order, else sorted)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return list(series.cat.categories)
    present = series.dropna().unique().tolist()
    return sorted(present, key=lambda v: (str(type(v)), v))


def sites_of(frame: pd.DataFrame, plan: Plan) -> list[str]:
    """The sites in a frame, sorted; a frame without a site column is one site named by the pooled label."""
    if plan.site_column not in frame.columns:
        return []
    return sorted(str(s) for s in frame[plan.site_column].dropna().unique())
