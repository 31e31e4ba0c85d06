"""Where the counts are in each kind of result table, and which sums tie them together.

Every count a reader sees becomes a cell of one :class:`~cohortpool.report.suppression.CellGrid`, keyed by
what it counts (not by the table it is printed in), so the same count printed in Table 2 and in the
accuracy table is one cell with one decision. Lines record what a reader can add up:

- a variable's levels plus the unprinted rest equal the group size (Table 1/2);
- site cells add up to the pooled (``ALL``) cell of the same count;
- detected plus missed equals the vertebrae read (Table 3 rates);
- for a pair of modalities, detected(m1) - detected(m2) = b - c (the McNemar discordant counts);
- a sign's TP / FP / FN / TN are the Table 2 counts of the sign in each group and their remainders.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence
from typing import Any

import pandas as pd

from cohortpool.report.suppression import CellGrid
from cohortpool.stats.result import ResultTable

#: site_id values that mean "all sites together" (a pooled row: the sum of its sites)
POOLED_SITES = frozenset({"", "ALL", "all", "pooled", "Pooled", "overall"})
#: levels that mean "the sign is present" for a yes/no variable
TRUE_LEVELS = frozenset({"yes", "true", "True", "1"})
_COUNT = re.compile(r"^\s*(\d+)(?:\s*\(.*\))?\s*$")
#: one count cell of a row: (column it is printed in, its grid key)
RowCells = list[tuple[str, Hashable]]


def blank(value: Any) -> bool:
    """Missing in any of the ways a frame says it (None, NaN, NA, empty text)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value == ""


def site_of(row: pd.Series) -> str:
    """The row's site, ``""`` when it has none."""
    value = row.get("site_id")
    return "" if blank(value) else str(value)


def text_of(value: Any) -> str:
    return "" if blank(value) else str(value)


def groups_of(frame: pd.DataFrame) -> list[str]:
    """The comparison groups of a table frame, from its ``n_<group>`` / ``summary_<group>`` column pairs."""
    return [c[2:] for c in frame.columns if c.startswith("n_") and f"summary_{c[2:]}" in frame.columns]


def shape_of(result: ResultTable) -> str:
    """Which layout a result has: comparison, detection, paired, independent, accuracy, forest, other."""
    columns = set(result.frame.columns)
    if result.kind in ("detection", "forest"):
        return result.kind
    if "variable" in columns and groups_of(result.frame):
        return "comparison"
    if {"discordant_b", "discordant_c", "finding", "diagnosis", "comparison"} <= columns:
        return "paired"
    if {"tp", "fp", "fn", "tn", "sign"} <= columns:
        return "accuracy"
    if {"finding", "diagnosis", "modalities"} <= columns:
        return "independent"
    return "other"


def count_in(row: pd.Series, group: str) -> int | None:
    """The count of a categorical row for a group: ``count_<group>``, else parsed from ``n (%)``."""
    value = _number(row.get(f"count_{group}"))
    if value is not None:
        return value
    if text_of(row.get("level")) == "":
        return None
    match = _COUNT.match(text_of(row.get(f"summary_{group}")))
    return int(match.group(1)) if match else None


def _number(value: Any) -> int | None:
    try:
        return None if blank(value) else int(float(value))
    except (TypeError, ValueError):
        return None


class Keys:
    """Grid keys; the site is always last (the pooled lines group on everything before it)."""

    @staticmethod
    def count(row: pd.Series, group: str) -> tuple[Hashable, ...]:
        level = text_of(row.get("level"))
        return (
            "count",
            row.get("analysis", ""),
            row.get("unit", ""),
            row["variable"],
            level,
            group,
            site_of(row),
        )

    @staticmethod
    def size(row: pd.Series, group: str) -> tuple[Hashable, ...]:
        return ("n", row.get("analysis", ""), row.get("unit", ""), row["variable"], group, site_of(row))

    @staticmethod
    def rest(size: tuple[Hashable, ...]) -> tuple[Hashable, ...]:
        return ("rest", *size[1:])

    @staticmethod
    def detected(finding: Any, diagnosis: Any, modality: Any, site: str) -> tuple[Hashable, ...]:
        return ("detected", str(finding), str(diagnosis), str(modality), site)

    @staticmethod
    def read(finding: Any, diagnosis: Any, modality: Any, site: str) -> tuple[Hashable, ...]:
        return ("read", str(finding), str(diagnosis), str(modality), site)

    @staticmethod
    def missed(finding: Any, diagnosis: Any, modality: Any, site: str) -> tuple[Hashable, ...]:
        return ("missed", str(finding), str(diagnosis), str(modality), site)


def comparison_cells(grid: CellGrid, frame: pd.DataFrame) -> list[RowCells]:
    """Group sizes and level counts of a group-comparison table; levels + rest = n."""
    cells: list[RowCells] = []
    levels: dict[tuple[Hashable, ...], list[Hashable]] = {}
    for _, row in frame.iterrows():
        found: RowCells = []
        for group in groups_of(frame):
            n = _number(row[f"n_{group}"])
            if n is None:
                continue
            size = grid.add(Keys.size(row, group), n)
            found.append((f"n_{group}", size))
            count = count_in(row, group)
            if count is not None:
                key = grid.add(Keys.count(row, group), count)
                # printed in count_<group> when the frame has it, else only inside summary_<group>
                column = f"count_{group}" if f"count_{group}" in frame.columns else f"summary_{group}"
                found.append((column, key))
                levels.setdefault(size, []).append(key)
        cells.append(found)
    for size, keys in levels.items():
        rest = Keys.rest(size)
        grid.add(rest, max(grid.values[size] - sum(grid.values[k] for k in keys), 0), published=False)
        grid.line([*keys, rest, size])
    return cells


def detection_cells(grid: CellGrid, frame: pd.DataFrame) -> list[RowCells]:
    """Detected and read counts of the detection-rate frame; detected + missed = read."""
    cells: list[RowCells] = []
    for _, row in frame.iterrows():
        ids = (row["finding"], row["diagnosis"], row["modality"], site_of(row))
        detected = grid.add(Keys.detected(*ids), int(row["detected"]))
        read = grid.add(Keys.read(*ids), int(row["n"]))
        missed = grid.add(Keys.missed(*ids), int(row["n"]) - int(row["detected"]), published=False)
        grid.line([detected, missed, read])
        cells.append([("detected", detected), ("n", read)])
    return cells


def paired_cells(grid: CellGrid, frame: pd.DataFrame) -> list[RowCells]:
    """McNemar discordant counts; with the detection counts, det(m1) - det(m2) = b - c."""
    cells: list[RowCells] = []
    for _, row in frame.iterrows():
        b, c = _number(row["discordant_b"]), _number(row["discordant_c"])
        if b is None or c is None:
            cells.append([])
            continue
        base = ("discordant", str(row["finding"]), str(row["diagnosis"]), str(row["comparison"]))
        key_b = grid.add((*base, "b", site_of(row)), b)
        key_c = grid.add((*base, "c", site_of(row)), c)
        modalities = [m.strip() for m in str(row["comparison"]).split(" vs ")]
        if len(modalities) == 2:
            pair = [Keys.detected(row["finding"], row["diagnosis"], m, site_of(row)) for m in modalities]
            if all(k in grid.values for k in pair):
                grid.line([*pair, key_b, key_c])
        cells.append([("discordant_b", key_b), ("discordant_c", key_c)])
    return cells


def accuracy_cells(grid: CellGrid, frame: pd.DataFrame) -> list[RowCells]:
    """TP/FP/FN/TN of each sign, unified with the comparison-table counts of the same sign where present."""
    index: dict[tuple[str, str, str], tuple[Hashable, Hashable]] = {}
    for key in grid.values:
        if isinstance(key, tuple) and key[0] == "count" and key[4] in TRUE_LEVELS:
            size = ("n", *key[1:4], key[5], key[6])
            index[(str(key[3]), str(key[5]), str(key[6]))] = (key, Keys.rest(size))
    cells: list[RowCells] = []
    for _, row in frame.iterrows():
        site, sign = site_of(row), str(row["sign"])
        positive = text_of(row.get("positive"))
        other = [g for (s, g, st) in index if s == sign and st == site and g != positive]
        keys: dict[str, Hashable] = {
            c: ("accuracy", str(row.get("analysis", "")), sign, c, site) for c in ("tp", "fp", "fn", "tn")
        }
        if positive and (sign, positive, site) in index and len(other) == 1:
            shared = dict(zip(("tp", "fn"), index[(sign, positive, site)], strict=True))
            shared.update(zip(("fp", "tn"), index[(sign, other[0], site)], strict=True))
            # the same count under two names must agree; if the tables count differently, keep them apart
            if all(grid.values.get(k) == _number(row[c]) for c, k in shared.items()):
                keys = shared
        found: RowCells = []
        for column, key in keys.items():
            value = _number(row[column])
            if value is not None:
                found.append((column, grid.add(key, value)))
        cells.append(found)
    return cells


def other_cells(grid: CellGrid, result: ResultTable) -> list[RowCells]:
    """Unknown layouts: integer columns named like counts are cells (primary suppression only)."""
    cells: list[RowCells] = []
    countish = [c for c in result.frame.columns if c in ("n", "count") or c.startswith(("n_", "count_"))]
    for position, (_, row) in enumerate(result.frame.iterrows()):
        found: RowCells = []
        for column in countish:
            value = _number(row[column])
            if value is not None:
                found.append((column, grid.add(("other", result.name, position, column), value)))
        cells.append(found)
    return cells


def pooled_lines(grid: CellGrid) -> None:
    """Site cells add up to their pooled cell: one line per pooled cell that has site siblings."""
    by_rest: dict[tuple[Hashable, ...], list[tuple[Hashable, ...]]] = {}
    for key in grid.values:
        if isinstance(key, tuple) and key and key[0] != "other":
            by_rest.setdefault(key[:-1], []).append(key)
    for keys in by_rest.values():
        pooled = [k for k in keys if k[-1] in POOLED_SITES]
        sites = [k for k in keys if k[-1] not in POOLED_SITES]
        if len(pooled) == 1 and sites:
            grid.line([*sites, pooled[0]])
            grid.keep.add(pooled[0])


_ORDER = {"comparison": 0, "detection": 1, "paired": 2, "accuracy": 3, "other": 4}


def build_grid(results: Sequence[ResultTable]) -> tuple[CellGrid, dict[int, list[RowCells]]]:
    """The grid of every result's counts, and per result (by position) the cells of each of its rows.

    Comparisons come first (accuracy counts look them up), then detection (the paired lines use it).
    """
    grid = CellGrid()
    rows: dict[int, list[RowCells]] = {}
    order = sorted(range(len(results)), key=lambda i: _ORDER.get(shape_of(results[i]), 9))
    for i in order:
        result, shape = results[i], shape_of(results[i])
        if shape == "comparison":
            rows[i] = comparison_cells(grid, result.frame)
        elif shape == "detection":
            rows[i] = detection_cells(grid, result.frame)
        elif shape == "paired":
            rows[i] = paired_cells(grid, result.frame)
        elif shape == "accuracy":
            rows[i] = accuracy_cells(grid, result.frame)
        elif shape == "other":
            rows[i] = other_cells(grid, result)
    pooled_lines(grid)
    return grid, rows
