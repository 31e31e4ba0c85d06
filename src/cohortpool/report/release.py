"""Make result tables fit to leave the hub: small-cell suppression applied across all of them at once.

Suppression is decided jointly over every table of a report, so a cell hidden in a site's table cannot be
recovered from the pooled table (site cells add up to the pooled cell), from the group size (levels add up
to n) or from a percentage. What a hidden cell takes with it:

- a hidden count hides its percentage and its rate (count = rate x n);
- a hidden group size hides the percentages and the mean/median summaries computed on it (a mean of fewer
  than ``threshold`` people is close to an individual value);
- a row with anything hidden loses its exact statistic and P value (an exact P on known margins can single
  out the hidden count), keeping only a banded P (``< 0.001``, ``< 0.01``, ``< 0.05``, ``>= 0.05``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from cohortpool.report.suppression import PRIMARY, CellGrid, protect
from cohortpool.stats.result import ResultTable

#: site_id values that mean "all sites together" (a pooled row: the sum of its sites)
POOLED_SITES = frozenset({"", "all", "ALL", "pooled", "overall", "Pooled", "All"})
#: tests whose rows summarise a level of a categorical variable as "n (%)"
CATEGORICAL_TESTS = frozenset(
    {"pearson_chi2", "yates_chi2", "fisher_exact", "fisher_freeman_halton", "cmh", "mantel_haenszel"}
)
SECONDARY_MARK = "*"
_COUNT = re.compile(r"^\s*(\d+)(?:\s*\(.*\))?\s*$")


def small_mark(threshold: int) -> str:
    """How a primary-suppressed count prints: ``<5`` for the default threshold."""
    return f"<{threshold}"


def groups_of(frame: pd.DataFrame) -> list[str]:
    """The comparison groups of a table frame, from its ``n_<group>`` / ``summary_<group>`` column pairs."""
    return [c[2:] for c in frame.columns if c.startswith("n_") and f"summary_{c[2:]}" in frame.columns]


def _site(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def _text(value: Any) -> str:
    return "" if _site(value) == "" else str(value)


def _is_categorical(row: pd.Series) -> bool:
    return str(row.get("test", "")) in CATEGORICAL_TESTS or _text(row.get("level")) != ""


def _count_of(summary: Any) -> int | None:
    match = _COUNT.match(str(summary))
    return int(match.group(1)) if match else None


def _band(p_value: Any) -> str:
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


class _Keys:
    """Cell keys shared by every table, so one cell printed twice is decided once."""

    @staticmethod
    def level(row: pd.Series, group: str) -> tuple[Hashable, ...]:
        return (
            "count",
            row.get("analysis", ""),
            row.get("unit", ""),
            row["variable"],
            _text(row.get("level")),
            group,
            _site(row.get("site_id")),
        )

    @staticmethod
    def size(row: pd.Series, group: str) -> tuple[Hashable, ...]:
        return (
            "n",
            row.get("analysis", ""),
            row.get("unit", ""),
            row["variable"],
            group,
            _site(row.get("site_id")),
        )

    @staticmethod
    def detected(row: pd.Series) -> tuple[Hashable, ...]:
        return ("detected", row["finding"], row["diagnosis"], row["modality"], _site(row.get("site_id")))

    @staticmethod
    def vertebrae(row: pd.Series) -> tuple[Hashable, ...]:
        return ("n_detection", row["finding"], row["diagnosis"], row["modality"], _site(row.get("site_id")))


def _pooled_lines(grid: CellGrid) -> None:
    """Site cells add up to their pooled cell: one line per pooled cell that has site siblings."""
    by_rest: dict[tuple[Hashable, ...], list[tuple[Hashable, ...]]] = {}
    for key in grid.values:
        if isinstance(key, tuple) and key and key[0] in ("count", "n", "detected", "n_detection", "rest"):
            by_rest.setdefault(key[:-1], []).append(key)
    for keys in by_rest.values():
        pooled = [k for k in keys if k[-1] in POOLED_SITES]
        sites = [k for k in keys if k[-1] not in POOLED_SITES]
        if len(pooled) == 1 and sites:
            grid.line([*sites, pooled[0]])


def _add_table(grid: CellGrid, frame: pd.DataFrame) -> None:
    groups = groups_of(frame)
    levels_seen: dict[tuple[Hashable, ...], list[tuple[Hashable, ...]]] = {}
    for _, row in frame.iterrows():
        for group in groups:
            n = pd.to_numeric(row[f"n_{group}"], errors="coerce")
            if pd.isna(n):
                continue
            size = grid.add(_Keys.size(row, group), int(n))
            if _is_categorical(row):
                count = _count_of(row[f"summary_{group}"])
                if count is not None:
                    key = grid.add(_Keys.level(row, group), count)
                    levels_seen.setdefault(size, []).append(key)
    for size, levels in levels_seen.items():
        # levels + whatever is not printed (other levels, missing) = n: the remainder is an unpublished cell
        rest = ("rest", *size[1:])
        shown = sum(grid.values[k] for k in levels)
        grid.add(rest, max(grid.values[size] - shown, 0), published=False)
        grid.line([*levels, rest, size])


def _add_detection(grid: CellGrid, frame: pd.DataFrame) -> None:
    for _, row in frame.iterrows():
        detected = grid.add(_Keys.detected(row), int(row["detected"]))
        n = grid.add(_Keys.vertebrae(row), int(row["n"]))
        missed = ("rest", *detected[1:])
        grid.add(missed, int(row["n"]) - int(row["detected"]), published=False)
        grid.line([detected, missed, n])


def build_grid(results: Sequence[ResultTable]) -> CellGrid:
    """Every count cell of every table and detection chart, with the relations a reader knows."""
    grid = CellGrid()
    for result in results:
        if result.kind == "table":
            _add_table(grid, result.frame)
        elif result.kind == "detection":
            _add_detection(grid, result.frame)
    _pooled_lines(grid)
    return grid


def _mark(marks: dict[Hashable, str], key: Hashable, threshold: int) -> str | None:
    kind = marks.get(key)
    if kind is None:
        return None
    return small_mark(threshold) if kind == PRIMARY else SECONDARY_MARK


def _release_table(
    frame: pd.DataFrame, marks: dict[Hashable, str], threshold: int
) -> tuple[pd.DataFrame, int]:
    out = frame.copy().astype(object)
    hidden_rows = 0
    for index, row in frame.iterrows():
        touched = False
        for group in groups_of(frame):
            if pd.isna(pd.to_numeric(row[f"n_{group}"], errors="coerce")):
                continue
            size_mark = _mark(marks, _Keys.size(row, group), threshold)
            if size_mark:
                out.at[index, f"n_{group}"] = size_mark
                touched = True
            count = _count_of(row[f"summary_{group}"]) if _is_categorical(row) else None
            count_mark = _mark(marks, _Keys.level(row, group), threshold) if count is not None else None
            if count_mark:
                out.at[index, f"summary_{group}"] = count_mark
                touched = True
            elif size_mark:
                # the percentage would give the hidden n back; a count alone does not
                out.at[index, f"summary_{group}"] = str(count) if count is not None else size_mark
        if touched:
            hidden_rows += 1
            for column in ("statistic", "df", "p_value"):
                if column in out.columns:
                    out.at[index, column] = None
            if "p_display" in out.columns:
                out.at[index, "p_display"] = _band(row.get("p_value"))
    return out, hidden_rows


def _release_detection(
    frame: pd.DataFrame, marks: dict[Hashable, str], threshold: int
) -> tuple[pd.DataFrame, int]:
    out = frame.copy().astype(object)
    hidden_rows = 0
    for index, row in frame.iterrows():
        det = _mark(marks, _Keys.detected(row), threshold)
        n = _mark(marks, _Keys.vertebrae(row), threshold)
        if det:
            out.at[index, "detected"] = det
        if n:
            out.at[index, "n"] = n
        if det or n:
            out.at[index, "rate"] = det or n
            hidden_rows += 1
    return out, hidden_rows


def suppression_note(threshold: int) -> str:
    """The footnote printed under every table that had cells hidden."""
    return (
        f"Small-cell suppression: counts from 1 to {threshold - 1} are shown as {small_mark(threshold)}; "
        f"{SECONDARY_MARK} marks a cell hidden so that a small cell cannot be recovered from totals; "
        "rows with hidden cells show only a banded P value."
    )


def release(results: Sequence[ResultTable], threshold: int) -> list[ResultTable]:
    """The tables as they may leave the hub (forest plots carry no counts and pass through unchanged)."""
    marks = protect(build_grid(results), threshold)
    released: list[ResultTable] = []
    for result in results:
        if result.kind == "table":
            frame, hidden = _release_table(result.frame, marks, threshold)
        elif result.kind == "detection":
            frame, hidden = _release_detection(result.frame, marks, threshold)
        else:
            released.append(result)
            continue
        notes = (*result.notes, suppression_note(threshold)) if hidden else result.notes
        released.append(replace(result, frame=frame, notes=notes))
    return released
