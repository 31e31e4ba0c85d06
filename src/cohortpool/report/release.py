"""Make result tables fit to leave the hub: small-cell suppression decided across all of them at once.

Suppression is decided jointly over every table of a report (:mod:`cohortpool.report.cells` says where the
counts are and how they add up), so a cell hidden in a site's table cannot be recovered from the pooled
table, from the group size, from the accuracy table or from a percentage. What a hidden cell takes along:

- a hidden count hides its percentage and its rate (count = rate x n);
- a hidden group size hides the percentages and the mean/median summaries computed on it (a mean of fewer
  than ``threshold`` people is close to an individual value);
- a row with anything hidden loses every exact statistic of that row (estimate, CI, test statistic, exact
  P: on known margins each can single out the hidden count) and its warnings, keeping a banded P
  (``< 0.001``, ``< 0.01``, ``< 0.05``, ``>= 0.05``); so does the same row in the forest plot, in the
  modality comparisons of the same finding and in the accuracy of the same sign.

Known residual risk: pooled rows (Mantel-Haenszel OR, Breslow-Day, DerSimonian-Laird) are computed on
every site's cells, hidden ones included, and stay shown unless their own counts are hidden; each is one
more equation in the hidden cells. Hiding them whenever any site has a small cell would hide most pooled
results of a consortium with one small site, which is the point of pooling.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from cohortpool.report.cells import (
    RowCells,
    blank,
    build_grid,
    count_in,
    groups_of,
    shape_of,
    site_of,
    text_of,
)
from cohortpool.report.suppression import PRIMARY, protect
from cohortpool.stats.result import ResultTable

SECONDARY_MARK = "*"
#: columns that name a row (never blanked): everything else numeric is a statistic of the row
_IDENTITY = frozenset(
    {"analysis", "unit", "site_id", "variable", "label", "level", "test", "warnings", "finding", "diagnosis",
     "modality", "modalities", "comparison", "method", "sign", "metric", "positive", "term", "measure",
     "estimate_kind", "heterogeneity_test", "is_pooled"}
)  # fmt: skip


def small_mark(threshold: int) -> str:
    """How a primary-suppressed count prints: ``<5`` for the default threshold."""
    return f"<{threshold}"


def band(p_value: Any) -> str:
    """A P value coarsened so it cannot single out a hidden count."""
    try:
        p = float(p_value)
    except (TypeError, ValueError):
        return ""
    if math.isnan(p):
        return ""
    for cut in (0.001, 0.01, 0.05):
        if p < cut:
            return f"< {cut:g}"
    return ">= 0.05"


def suppression_note(threshold: int) -> str:
    """The footnote printed under every table that had cells hidden."""
    return (
        f"Small-cell suppression: counts from 1 to {threshold - 1} are shown as {small_mark(threshold)}; "
        f"{SECONDARY_MARK} marks a cell hidden so that a small cell cannot be recovered from totals; "
        "rows with hidden cells show no exact statistics, only a banded P value."
    )


class _Release:
    """The marks of one release, and the rows they touch, shared by every table rewrite."""

    def __init__(self, results: Sequence[ResultTable], threshold: int) -> None:
        self.threshold = threshold
        grid, self.rows = build_grid(results)
        self.marks = protect(grid, threshold)
        hidden_keys = set(self.marks)
        # (finding, diagnosis, site) with any hidden detection count: their modality tests are touched
        self.hidden_detection = {
            (k[1], k[2], k[4]) for k in hidden_keys if isinstance(k, tuple) and k[0] == "detected"
        }
        self.hidden_labels: dict[str, set[tuple[str, str]]] = {}
        self.hidden_signs: set[tuple[str, str]] = set()

    def mark(self, key: Hashable) -> str | None:
        kind = self.marks.get(key)
        if kind is None:
            return None
        return small_mark(self.threshold) if kind == PRIMARY else SECONDARY_MARK

    def rewrite(self, frame: pd.DataFrame, cells: list[RowCells], extra: list[bool] | None = None,
                shape: str = "") -> tuple[pd.DataFrame, list[bool]]:  # fmt: skip
        """Marks into count cells; touched rows lose their statistics (P banded)."""
        out = frame.copy().astype(object)
        touched_rows: list[bool] = []
        for position, (index, row) in enumerate(frame.iterrows()):
            row_cells = cells[position] if position < len(cells) else []
            marked = {column: self.mark(key) for column, key in row_cells}
            touched = any(marked.values()) or bool(extra and extra[position])
            for column, mark in marked.items():
                if mark and column:
                    out.at[index, column] = mark
            if shape == "comparison":
                self._summaries(out, index, row, dict(row_cells))
            if touched:
                # the row's warnings and notes describe the statistics it loses and can give a hidden count
                # back ("fewer than 2 values in a group" beside a <5 is 1; "no negative units" beside a *
                # is 0): they go with them
                for column in ("warnings", "note"):
                    if column in frame.columns:
                        out.at[index, column] = ""
                kept = {c for c, m in marked.items() if not m}
                for column in frame.columns:
                    value = row[column]
                    if (
                        column in _IDENTITY
                        or column in kept
                        or marked.get(column)
                        or column.startswith("summary_")
                    ):
                        continue
                    if column == "p_display":
                        out.at[index, column] = band(row.get("p_value"))
                    elif column.endswith("_display") or (
                        isinstance(value, numbers.Real) and not isinstance(value, bool)
                    ):
                        out.at[index, column] = None
            touched_rows.append(touched)
        return out, touched_rows

    def _summaries(self, out: pd.DataFrame, index: Any, row: pd.Series, cells: dict[str, Hashable]) -> None:
        for group in groups_of(out):
            size_mark = self.mark(cells[f"n_{group}"]) if f"n_{group}" in cells else None
            count = count_in(row, group)
            count_key = cells.get(f"count_{group}", cells.get(f"summary_{group}"))
            count_mark = self.mark(count_key) if count_key is not None else None
            if count_mark:
                out.at[index, f"summary_{group}"] = count_mark
            elif size_mark:
                # the percentage would give the hidden n back; a count alone does not; a mean of few is hidden
                out.at[index, f"summary_{group}"] = str(count) if count is not None else size_mark


def _forest(result: ResultTable, hidden: set[tuple[str, str]]) -> tuple[pd.DataFrame, bool]:
    out = result.frame.copy().astype(object)
    touched = False
    for index, row in result.frame.iterrows():
        if (text_of(row["label"]), site_of(row)) in hidden:
            for column in ("estimate", "ci_low", "ci_high", "weight"):
                out.at[index, column] = None
            touched = True
    return out, touched


def release(results: Sequence[ResultTable], threshold: int) -> list[ResultTable]:
    """The tables as they may leave the hub, in the same order, each noted when something was hidden."""
    state = _Release(results, threshold)
    frames: dict[int, tuple[pd.DataFrame, bool]] = {}
    # comparisons first: the accuracy rows and forest rows of a touched sign follow them
    for i in sorted(range(len(results)), key=lambda i: shape_of(results[i]) != "comparison"):
        result, shape = results[i], shape_of(results[i])
        if shape == "forest":
            continue
        frame = result.frame
        extra: list[bool] | None = None
        if shape in ("paired", "independent"):
            extra = [
                (text_of(r["finding"]), text_of(r["diagnosis"]), site_of(r)) in state.hidden_detection
                for _, r in frame.iterrows()
            ]
        elif shape == "accuracy":
            extra = [(text_of(r["sign"]), site_of(r)) in state.hidden_signs for _, r in frame.iterrows()]
        out, touched = state.rewrite(frame, state.rows.get(i, []), extra, shape)
        if shape == "detection":
            # a hidden rate reads as its count's mark rather than as missing
            for index, hit in zip(out.index, touched, strict=True):
                if hit:
                    marks = [v for v in (out.at[index, "detected"], out.at[index, "n"]) if isinstance(v, str)]
                    out.at[index, "rate"] = marks[0] if marks else None
        if shape == "comparison":
            labels = state.hidden_labels.setdefault(result.name, set())
            for (_, r), hit in zip(frame.iterrows(), touched, strict=True):
                if hit:
                    label = text_of(r.get("label", r["variable"]))
                    # a forest row names a level of a many-level variable "label: level"
                    labels.update({(label, site_of(r)), (f"{label}: {text_of(r.get('level'))}", site_of(r))})
                    state.hidden_signs.add((text_of(r["variable"]), site_of(r)))
        frames[i] = (out, any(touched))
    released: list[ResultTable] = []
    for i, result in enumerate(results):
        if shape_of(result) == "forest":
            base = result.name.removesuffix("_forest")
            hidden = (
                set().union(*state.hidden_labels.values())
                if base not in state.hidden_labels
                else (state.hidden_labels[base])
            )
            frame, hit = _forest(result, hidden)
        else:
            frame, hit = frames[i]
        notes = (*result.notes, suppression_note(threshold)) if hit else result.notes
        released.append(replace(result, frame=frame, notes=notes))
    return released


__all__ = ["SECONDARY_MARK", "band", "blank", "groups_of", "release", "small_mark", "suppression_note"]
