"""Small-cell suppression that survives differencing: which count cells must be hidden.

A count from 1 to ``threshold - 1`` is *primary* suppressed. Hiding it alone is not enough: when a published
total and the other members of the same additive relation are shown, the hidden cell is their difference.
So every hidden cell is audited by propagating exact recoveries along every known additive relation ("line":
a set of cells whose signed sum is known, e.g. levels + remainder = group n, or site cells = pooled cell),
and each recovered sensitive cell costs one more *secondary* suppression (the smallest published cell of the
line that gave it away) until nothing sensitive is recoverable.

Hand-written because no maintained Python library does table-level suppression (tau-Argus is Java, sdcMicro
is R); this is the classic line-audit heuristic. It blocks exact recovery by chains of single-line
differences; it is not a full linear-programming interval audit (tau-Argus's "optimal" mode), so a
determined attacker solving several lines jointly could narrow a hidden cell to an interval, never below
the suppression threshold's own width on the tables this pipeline emits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

PRIMARY = "primary"
SECONDARY = "secondary"
K = TypeVar("K", bound=Hashable)


@dataclass
class CellGrid:
    """The count cells of a set of outputs and the additive relations among them.

    Attributes
    ----------
    values
        Every cell's true count, published or not (unpublished cells are e.g. the "not detected" remainder
        of a detection rate: never printed, but a line through it is still an equation).
    published
        Cells that appear in an output unless suppressed.
    lines
        Each a tuple of cells whose sum relation is known to a reader (the sign does not matter: one unknown
        in a known linear relation is one equation, one solution).
    """

    values: dict[Hashable, int] = field(default_factory=dict)
    published: set[Hashable] = field(default_factory=set)
    lines: list[tuple[Hashable, ...]] = field(default_factory=list)
    #: cells to hide only when nothing else in the line can be (e.g. the pooled totals a reader needs most)
    keep: set[Hashable] = field(default_factory=set)

    def add(self, key: K, value: int, *, published: bool = True) -> K:
        """Register a cell (idempotent: the same key from two outputs is the same cell)."""
        previous = self.values.get(key)
        if previous is not None and previous != value:
            raise ValueError(f"cell {key!r} has two different counts ({previous} and {value}) across outputs")
        self.values[key] = int(value)
        if published:
            self.published.add(key)
        return key

    def line(self, members: Iterable[Hashable]) -> None:
        """Record that the sum relation over ``members`` is known."""
        cells = tuple(dict.fromkeys(members))
        if len(cells) >= 2:
            self.lines.append(cells)


def is_small(value: int, threshold: int) -> bool:
    """A count the rule protects: 1 to ``threshold - 1`` (zero discloses no one)."""
    return 1 <= value < threshold


def _recoveries(
    grid: CellGrid,
    hidden: set[Hashable],
    lines: Sequence[tuple[Hashable, ...]],
    lines_of: Mapping[Hashable, list[int]],
) -> dict[Hashable, tuple[Hashable, ...]]:
    """Cells a reader can compute exactly from what is shown, each with the line that yields it.

    Unit propagation: a line with one unknown cell yields it, which may leave another line with one; a
    queue of such lines makes this linear in the size of the lines (the audit runs once per suppression).
    """
    known = set(grid.values) - hidden
    unknown = [sum(1 for k in line if k not in known) for line in lines]
    queue = deque(i for i, count in enumerate(unknown) if count == 1)
    recovered: dict[Hashable, tuple[Hashable, ...]] = {}
    while queue:
        i = queue.popleft()
        if unknown[i] != 1:
            continue
        cell = next(k for k in lines[i] if k not in known)
        known.add(cell)
        recovered[cell] = lines[i]
        for j in lines_of[cell]:
            unknown[j] -= 1
            if unknown[j] == 1:
                queue.append(j)
    return recovered


def _sort_key(grid: CellGrid, key: Hashable) -> tuple[bool, bool, int, str]:
    # cells to keep last, then the smallest non-zero cell first (least information lost); repr breaks ties
    value = grid.values[key]
    return (key in grid.keep, value == 0, value, repr(key))


def _complement(
    grid: CellGrid,
    line: tuple[Hashable, ...],
    suppressed: set[Hashable],
    recovered: Mapping[Hashable, tuple[Hashable, ...]],
    seen: set[tuple[Hashable, ...]],
) -> Hashable | None:
    """The published cell whose suppression breaks this recovery (following recoveries back if needed)."""
    seen.add(line)
    shown = [k for k in line if k in grid.published and k not in suppressed]
    if shown:
        return min(shown, key=lambda k: _sort_key(grid, k))
    for key in sorted((k for k in line if k in recovered), key=lambda k: _sort_key(grid, k)):
        upstream = recovered[key]
        if upstream not in seen:
            found = _complement(grid, upstream, suppressed, recovered, seen)
            if found is not None:
                return found
    return None


def protect(grid: CellGrid, threshold: int, *, protect_complements: bool = False) -> dict[Hashable, str]:
    """Decide which published cells to hide, marking each ``PRIMARY`` or ``SECONDARY``.

    By default the rule protects what an output prints: a small count that is never printed (the 3 of 98
    vertebrae *without* a fracture line) may be derived, as the issue's rule is about shown counts and
    hiding every rate above (n - threshold) / n would hide the study's main findings. With
    ``protect_complements`` such unprinted small cells are protected as well (the stricter policy).

    Raises
    ------
    ValueError
        If ``threshold`` is below 1, or a sensitive cell cannot be protected (a line with nothing left to
        hide), which means the outputs themselves must change.
    """
    if threshold < 1:
        raise ValueError(f"small_cell_threshold must be >= 1, got {threshold}")
    marks: dict[Hashable, str] = {
        k: PRIMARY for k in sorted(grid.published, key=repr) if is_small(grid.values[k], threshold)
    }
    candidates = grid.values if protect_complements else {k: grid.values[k] for k in grid.published}
    sensitive = {k for k, v in candidates.items() if is_small(v, threshold)}
    unpublished = set(grid.values) - grid.published
    # a stable order: the same tables always give the same suppression pattern
    lines = sorted(set(grid.lines), key=repr)
    lines_of: dict[Hashable, list[int]] = {k: [] for k in grid.values}
    for i, line in enumerate(lines):
        for key in line:
            lines_of[key].append(i)
    while True:
        hidden = set(marks) | unpublished
        recovered = _recoveries(grid, hidden, lines, lines_of)
        leaked = sorted((k for k in recovered if k in marks or k in sensitive), key=repr)
        if not leaked:
            return marks
        cell = leaked[0]
        extra = _complement(grid, recovered[cell], set(marks), recovered, set())
        if extra is None:
            raise ValueError(f"cannot protect small cell {cell!r}: every cell of its line is already hidden")
        marks[extra] = SECONDARY
