"""Forest plots on the page: what can be drawn is drawn, what cannot is listed in a line, many sites fold.

A forest frame has a row per outcome and site plus the pooled rows. Rows without an estimate are not
drawn: in the released report a site row small-cell suppression emptied, anywhere a row that has no
estimate (e.g. a level nobody had). Instead of a plot row each, they are listed compactly under the
figure, sites with the same hidden outcomes together. With more sites than ``collapse_above`` the main
figure and table show the pooled rows only (one line per outcome), and each outcome's per-site plot and
rows fold into a ``<details>`` block below, so fifty sites stay readable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd
from markupsafe import Markup

from cohortpool.report.cells import text_of
from cohortpool.report.layout import METHODS, forest
from cohortpool.report.page import Detail, numeric_columns
from cohortpool.stats.result import ResultTable

#: sites drawn in one forest plot; above this each outcome gets its own collapsed plot
COLLAPSE_SITES_ABOVE = 8

Draw = Callable[[ResultTable, bool], str]


@dataclass
class ForestView:
    """A forest result laid out for the page."""

    figure: Markup | None
    headers: list[str]
    rows: list[list[str]]
    omitted: tuple[str, ...] = ()
    details: list[Detail] = field(default_factory=list)


def drawable(frame: pd.DataFrame) -> pd.Series:
    """Rows with a finite estimate and interval (what a forest plot can draw)."""
    values = frame[["estimate", "ci_low", "ci_high"]].apply(pd.to_numeric, errors="coerce")
    finite: pd.Series = values.notna().all(axis=1) & values.abs().lt(float("inf")).all(axis=1)
    return finite


def _sites_text(sites: list[str]) -> str:
    return ", ".join(sites)


def _suppressed_line(hidden: pd.DataFrame, outcomes: list[str]) -> str:
    """``site02, site03: every outcome; site01: Wedge-shaped fracture, Intravertebral cleft``."""
    by_site: dict[str, list[str]] = {}
    for _, row in hidden.iterrows():
        by_site.setdefault(text_of(row["site_id"]), []).append(text_of(row["label"]))
    groups: dict[tuple[str, ...], list[str]] = {}
    for site, labels in by_site.items():
        key = tuple(o for o in outcomes if o in set(labels))
        groups.setdefault(key, []).append(site)
    parts = []
    for key, sites in sorted(groups.items(), key=lambda kv: (-len(kv[0]), kv[1])):
        rest = [o for o in outcomes if o not in key]
        if not rest:
            what = "every outcome"
        elif len(rest) < len(key):
            what = "every outcome but " + ", ".join(rest)
        else:
            what = ", ".join(key)
        parts.append(f"{_sites_text(sorted(sites))}: {what}")
    return "Not drawn, small-cell suppression: " + "; ".join(parts) + "."


def _not_estimable_line(rows: pd.DataFrame) -> str:
    """``Genant grade: none (Pooled MH, Pooled DL random effects; site02)``."""
    by_outcome: dict[str, list[str]] = {}
    for _, row in rows.iterrows():
        if bool(row["is_pooled"]):
            method = text_of(row.get("method"))
            name = f"pooled {METHODS.get(method, method) or ''}".strip()
        else:
            name = text_of(row["site_id"])
        by_outcome.setdefault(text_of(row["label"]), []).append(name)
    parts = [f"{label} ({', '.join(names)})" for label, names in by_outcome.items()]
    return "Not drawn, no estimate: " + "; ".join(parts) + "."


def forest_view(result: ResultTable, draw: Draw, *, released: bool, collapse_above: int) -> ForestView:
    """The figure, table, omitted-row lines and (with many sites) per-outcome details of a forest result.

    ``draw(result, outcome_in_labels)`` renders an SVG (the page's figure cache sits behind it).
    """
    frame = result.frame
    if frame.empty:
        return ForestView(None, *forest(frame))
    pooled = frame["is_pooled"].astype(bool)
    can_draw = drawable(frame)
    outcomes = list(dict.fromkeys(frame["label"].map(text_of)))
    # the release empties a hidden row's estimate to None; a row that has no estimate (a site whose groups
    # do not vary, or without values) keeps NaN, and is listed as such, not as hidden for privacy
    emptied = frame["estimate"].map(lambda value: value is None).astype(bool)
    suppressed = ~can_draw & ~pooled & emptied if released else pd.Series(False, index=frame.index)
    omitted = []
    if suppressed.any():
        omitted.append(_suppressed_line(frame[suppressed], outcomes))
    if (~can_draw & ~suppressed).any():
        omitted.append(_not_estimable_line(frame[~can_draw & ~suppressed]))
    shown = frame[can_draw]
    sites = list(dict.fromkeys(frame.loc[~pooled, "site_id"].map(text_of)))
    if len(sites) <= collapse_above:
        figure = Markup(draw(replace(result, frame=shown), True)) if len(shown) else None  # noqa: S704
        return ForestView(figure, *forest(shown), omitted=tuple(omitted))
    # many sites: one line per outcome up front, each outcome's sites folded below
    summary = shown[shown["is_pooled"].astype(bool)]
    figure = Markup(draw(replace(result, frame=summary), True)) if len(summary) else None  # noqa: S704
    details = []
    for number, outcome in enumerate(outcomes, start=1):
        part = shown[shown["label"].map(text_of) == outcome]
        drawn_sites = int((~part["is_pooled"].astype(bool)).sum())
        hidden = int((suppressed & (frame["label"].map(text_of) == outcome)).sum())
        headers, rows = forest(part)
        sub = replace(result, name=f"{result.name}-{number}", title=f"{result.title}: {outcome}", frame=part)
        details.append(
            Detail(
                anchor=f"{result.name}-{number}".lower(),
                summary=f"{outcome}: each site ({drawn_sites} drawn"
                + (f", {hidden} suppressed)" if hidden else ")"),
                headers=headers,
                rows=rows,
                numeric=numeric_columns(rows, len(headers)),
                figure=Markup(draw(sub, False)) if len(part) else None,  # noqa: S704
            )
        )
    return ForestView(figure, *forest(summary), omitted=tuple(omitted), details=details)
