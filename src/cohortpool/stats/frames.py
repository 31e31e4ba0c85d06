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
        codes = np.full(len(x), -1, dtype=np.int64)  # -1: outside every bin (missing)
        for code, b in enumerate(d.bins):
            ok = np.isfinite(x)
            if b.min is not None:
                ok &= (x >= b.min) if b.min_inclusive else (x > b.min)
            if b.max is not None:
                ok &= (x <= b.max) if b.max_inclusive else (x < b.max)
            codes[ok] = code
        dtype = pd.CategoricalDtype(categories=[b.label for b in d.bins], ordered=True)
        labels = pd.Categorical.from_codes(codes, dtype=dtype)
        out = out.assign(**{d.name: labels})
    return out


def levels_of(series: pd.Series) -> list[object]:
    """The levels of a categorical column in a stable order (categorical order, else sorted)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return list(series.cat.categories)
    present = series.dropna().unique().tolist()
    return sorted(present, key=lambda v: (str(type(v)), v))


def as_keys(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The frame with these columns as pandas categoricals of text: grouping millions of rows by a
    categorical is many times faster than by strings, and every later comparison sees the same text."""
    present = [
        c for c in columns if c in frame.columns and not isinstance(frame[c].dtype, pd.CategoricalDtype)
    ]
    if not present:
        return frame
    return frame.assign(**{c: frame[c].astype(str).astype("category") for c in present})


def codes_of(values: pd.Series) -> tuple[npt.NDArray[np.int64], list[object]]:
    """Integer codes of a column (-1 for missing) and the value of each code."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return np.asarray(values.cat.codes.to_numpy(), dtype=np.int64), list(values.cat.categories)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), list(uniques)


def count_cube(w: pd.Series, *axes: tuple[npt.NDArray[np.int64], int]) -> npt.NDArray[np.int64]:
    """Weighted counts over several coded axes at once: one ``np.bincount`` instead of a pandas group-by
    (tens of times faster on millions of rows). Each axis is (codes, size); rows with a code < 0 are
    left out."""
    shape = tuple(size for _, size in axes)
    flat = np.zeros(len(w), dtype=np.int64)
    keep = np.ones(len(w), dtype=bool)
    for codes, size in axes:
        keep &= codes >= 0
        flat = flat * size + np.where(codes >= 0, codes, 0)
    weights_ = w.to_numpy(dtype=np.float64)[keep]
    counts = np.bincount(flat[keep], weights=weights_, minlength=int(np.prod(shape)))
    return np.rint(counts).astype(np.int64).reshape(shape)


def sites_of(frame: pd.DataFrame, plan: Plan) -> list[str]:
    """The sites in a frame, sorted; a frame without a site column is one site named by the pooled label."""
    if plan.site_column not in frame.columns:
        return []
    return sorted(str(s) for s in frame[plan.site_column].dropna().unique())
