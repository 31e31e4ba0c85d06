"""The one object the statistics stage hands to the report stage.

The report never recomputes a statistic: it renders :class:`ResultTable` objects as they come, so every
number in the HTML, CSV, XLSX and SPSS exports is traceable to one row of one frame built here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

#: the kinds of result the report knows how to draw
KINDS: tuple[str, ...] = ("table", "forest", "detection")

#: frame columns the report relies on, by kind ("table" frames have at least the group-comparison columns)
FOREST_COLUMNS: tuple[str, ...] = (
    "label",
    "site_id",
    "estimate",
    "ci_low",
    "ci_high",
    "weight",
    "is_pooled",
)
#: detection frames also carry the plan's group column (the VCF plan's is ``diagnosis``) and ``site_id``
DETECTION_COLUMNS: tuple[str, ...] = ("finding", "modality", "detected", "n", "rate")
COMPARISON_COLUMNS: tuple[str, ...] = (
    "analysis",
    "unit",
    "site_id",
    "variable",
    "level",
    "test",
    "statistic",
    "df",
    "p_value",
    "p_display",
    "warnings",
)


@dataclass(frozen=True)
class ResultTable:
    """One table or figure of results.

    Parameters
    ----------
    name
        Stable machine name (file stem of its CSV export, sheet name), e.g. ``"table1_site01"``.
    title
        Human title as printed above the table or figure.
    frame
        The numbers. Group-comparison tables carry :data:`COMPARISON_COLUMNS` plus ``n_<group>`` and
        ``summary_<group>`` per group; forest frames carry :data:`FOREST_COLUMNS`; detection frames
        :data:`DETECTION_COLUMNS`.
    notes
        Footnotes: method, caveats, suppression applied. Printed under the table in order.
    kind
        One of :data:`KINDS`; tells the report how to draw it.
    levels
        The order the plan gives the levels of the analysed columns, e.g. ``{"diagnosis": ("OP", "MET")}``
        (reference group first) or a derived variable's bins: exports code and list levels in this order
        (SPSS value labels), where sorting would put MET before OP.
    """

    name: str
    title: str
    frame: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()
    kind: str = "table"
    levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"ResultTable {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        required = {"forest": FOREST_COLUMNS, "detection": DETECTION_COLUMNS}.get(self.kind, ())
        missing = [c for c in required if c not in self.frame.columns]
        if missing:
            raise ValueError(f"ResultTable {self.name!r} of kind {self.kind!r} lacks columns {missing}")
