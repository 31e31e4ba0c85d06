"""Small-cell suppression: small counts hidden, and no hidden cell recoverable by differencing."""

from __future__ import annotations

import pytest

from cohortpool.report.suppression import PRIMARY, SECONDARY, CellGrid, protect


def _recoverable(grid: CellGrid, hidden: set) -> set:
    """Independent re-derivation: what a reader computes from single-line differences."""
    known = set(grid.values) - hidden
    changed = True
    while changed:
        changed = False
        for line in grid.lines:
            unknown = [k for k in line if k not in known]
            if len(unknown) == 1:
                known.add(unknown[0])
                changed = True
    return known


def test_counts_below_threshold_are_primary_suppressed_and_zero_is_not() -> None:
    grid = CellGrid()
    for key, value in {"a": 0, "b": 1, "c": 4, "d": 5, "e": 50}.items():
        grid.add(key, value)
    marks = protect(grid, threshold=5)
    assert marks == {"b": PRIMARY, "c": PRIMARY}


def test_single_hidden_cell_in_a_line_with_published_total_forces_a_secondary() -> None:
    # site cells 3, 8, 9 add up to the pooled 20: hiding the 3 alone is undone by 20 - 8 - 9
    grid = CellGrid()
    for key, value in {"s1": 3, "s2": 8, "s3": 9, "pooled": 20}.items():
        grid.add(key, value)
    grid.line(["s1", "s2", "s3", "pooled"])
    marks = protect(grid, threshold=5)
    assert marks["s1"] == PRIMARY
    assert marks["s2"] == SECONDARY  # the smallest other cell
    assert "s3" not in marks and "pooled" not in marks
    hidden = set(marks)
    assert not ({"s1", "s2"} & _recoverable(grid, hidden))


def test_unpublished_small_remainder_is_protected_only_under_the_strict_policy() -> None:
    # 47 of 50 men shown, women not printed: 50 - 47 = 3 women can be derived
    grid = CellGrid()
    grid.add("male", 47)
    grid.add("n", 50)
    grid.add("female", 3, published=False)
    grid.line(["male", "female", "n"])
    assert protect(grid, threshold=5) == {}
    assert protect(grid, threshold=5, protect_complements=True) == {"male": SECONDARY}


def test_chained_recovery_through_two_tables_is_blocked() -> None:
    # two sites x two levels, with pooled cells and group sizes: the classic 2-D margin attack
    values = {
        ("a", "s1"): 2, ("b", "s1"): 30, ("n", "s1"): 32,
        ("a", "s2"): 10, ("b", "s2"): 40, ("n", "s2"): 50,
        ("a", "all"): 12, ("b", "all"): 70, ("n", "all"): 82,
    }  # fmt: skip
    grid = CellGrid()
    for key, value in values.items():
        grid.add(key, value)
    for site in ("s1", "s2", "all"):
        grid.line([("a", site), ("b", site), ("n", site)])
    for level in ("a", "b", "n"):
        grid.line([(level, "s1"), (level, "s2"), (level, "all")])
    marks = protect(grid, threshold=5)
    assert marks[("a", "s1")] == PRIMARY
    assert not (set(marks) & _recoverable(grid, set(marks)))
    # and it needed more than one extra cell: a rectangle of four hidden cells is the minimum
    assert len(marks) >= 4


def test_same_cell_with_two_counts_is_an_error() -> None:
    grid = CellGrid()
    grid.add("x", 3)
    with pytest.raises(ValueError, match="two different counts"):
        grid.add("x", 4)


def test_threshold_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="small_cell_threshold"):
        protect(CellGrid(), threshold=0)


def test_cells_marked_keep_are_hidden_last() -> None:
    grid = CellGrid()
    for key, value in {"s1": 3, "s2": 40, "pooled": 20}.items():
        grid.add(key, value)
    grid.line(["s1", "s2", "pooled"])
    grid.keep.add("pooled")
    assert protect(grid, threshold=5) == {"s1": PRIMARY, "s2": SECONDARY}
