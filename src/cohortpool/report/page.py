"""What the report page is made of, as the template draws it: sections of tables and figures.

Kept apart from the modules that fill it (:mod:`~cohortpool.report.html` for results,
:mod:`~cohortpool.report.forest` for forest plots, :mod:`~cohortpool.report.quality` for data quality) so
each of them builds plain data and the template alone decides the markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup

_NUMERIC = re.compile(r"^(?:[<>*≥≤]|[<>]=)?\s?[-−]?\d|^\*$")


def numeric_columns(rows: list[list[str]], columns: int) -> list[bool]:
    """Which of ``columns`` columns to right-align: those whose filled cells all start like a number or
    a mark (none in a table without rows)."""
    return [
        bool(rows) and all(_NUMERIC.match(r[i]) for r in rows if r[i]) and any(r[i] for r in rows)
        for i in range(columns)
    ]


@dataclass
class Detail:
    """A collapsed part of a section (``<details>``): e.g. one outcome's forest plot over every site."""

    anchor: str
    summary: str
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)
    figure: Markup | None = None


@dataclass
class Section:
    """One table or figure as the template draws it."""

    anchor: str
    title: str
    kind: str
    headers: list[str]
    rows: list[list[str]]
    notes: tuple[str, ...] = ()
    #: per column: right-align (every filled cell of it reads as a number, a mark or a P value)
    numeric: list[bool] = field(default_factory=list)
    figure: Markup | None = None
    batches: tuple[str, ...] = ()
    sites: str = "all sites"
    #: short lines said instead of drawing rows, e.g. which sites' rows small-cell suppression hid
    omitted: tuple[str, ...] = ()
    #: collapsed parts shown after the table
    details: list[Detail] = field(default_factory=list)
    #: a lead sentence printed under the title
    lead: str = ""


@dataclass
class ReportPage:
    """The whole page: pooled results first, then each site's, then quality and provenance."""

    title: str
    lead: str = ""
    pooled: list[Section] = field(default_factory=list)
    by_site: dict[str, list[Section]] = field(default_factory=dict)
    #: many sites: each site's sections start collapsed (``<details>``) so the pooled results lead
    collapse_sites: bool = False
    quality: list[Section] = field(default_factory=list)
    provenance: list[tuple[str, str]] = field(default_factory=list)
    batches: list[tuple[str, str]] = field(default_factory=list)
    released: bool = True
    #: relative link to the warehouse's data dictionary page in the report folder, when there is one
    dictionary: str | None = None
