"""The report as one self-contained HTML file: tables laid out like the paper's, figures inline as SVG.

Self-contained means a researcher can e-mail it or open it offline: CSS is inline, figures are inline
``<svg>``, there is no script and no external link. Nothing time-dependent is printed, so the same results
and provenance give the same bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from cohortpool.report.cells import POOLED_SITES, text_of
from cohortpool.report.figures import figure_svg
from cohortpool.report.layout import cell, lay_out
from cohortpool.report.provenance import Provenance, sites_of
from cohortpool.report.quality import flagged_sites
from cohortpool.stats.result import ResultTable

_ANCHOR = re.compile(r"[^a-z0-9_-]+")


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


@dataclass
class ReportPage:
    """The whole page: pooled results first, then each site's, then quality and provenance."""

    title: str
    lead: str = ""
    pooled: list[Section] = field(default_factory=list)
    by_site: dict[str, list[Section]] = field(default_factory=dict)
    quality: Section | None = None
    provenance: list[tuple[str, str]] = field(default_factory=list)
    batches: list[tuple[str, str]] = field(default_factory=list)
    released: bool = True


_NUMERIC = re.compile(r"^(?:[<>*≥≤]|[<>]=)?\s?[-−]?\d|^\*$")


def numeric_columns(rows: list[list[str]], columns: int) -> list[bool]:
    """Which of ``columns`` columns to right-align: those whose filled cells all start like a number or
    a mark (none in a table without rows)."""
    return [
        bool(rows) and all(_NUMERIC.match(r[i]) for r in rows if r[i]) and any(r[i] for r in rows)
        for i in range(columns)
    ]


def _parts(result: ResultTable) -> list[tuple[str, pd.DataFrame]]:
    """The result split into its pooled rows ("") and each site's rows, in that order."""
    frame = result.frame
    if result.kind == "forest" or "site_id" not in frame.columns:
        return [("", frame)]
    site = frame["site_id"].map(text_of)
    pooled = site.isin(POOLED_SITES)
    sites = list(dict.fromkeys(site[~pooled]))
    if not pooled.any() and len(sites) <= 1:
        return [("", frame)]
    parts = [("", frame[pooled])] if pooled.any() else []
    return parts + [(s, frame[site == s]) for s in sites]


def _figure(result: ResultTable, cache: dict[str, str] | None) -> str:
    """The result's SVG, drawn once per distinct content (the internal and released pages share most)."""
    if cache is None:
        return figure_svg(result) or ""
    digest = hashlib.sha256(result.name.encode())
    digest.update(pd.util.hash_pandas_object(result.frame.astype(str), index=True).to_numpy().tobytes())
    key = digest.hexdigest()
    if key not in cache:
        cache[key] = figure_svg(result) or ""
    return cache[key]


def _section(
    result: ResultTable,
    site: str,
    frame: pd.DataFrame,
    provenance: Provenance,
    cache: dict[str, str] | None = None,
) -> Section:
    headers, rows = lay_out(result, frame)
    figure = None
    if site == "" and result.kind in ("forest", "detection"):
        # our own matplotlib output: text in it is XML-escaped by matplotlib
        figure = Markup(_figure(replace(result, frame=frame), cache))  # noqa: S704
    part = replace(result, frame=frame)
    covered = sites_of(part)
    suffix = f"-{site}" if site else ""
    return Section(
        anchor=_ANCHOR.sub("-", f"{result.name}{suffix}".lower()),
        title=result.title if not site else f"{result.title} ({site})",
        kind=result.kind,
        headers=headers,
        rows=rows,
        notes=result.notes,
        numeric=numeric_columns(rows, len(headers)),
        figure=figure,
        batches=provenance.batches_behind(part),
        sites="all sites" if covered is None else ", ".join(sorted(covered)),
    )


def quality_section(quality: pd.DataFrame) -> Section:
    """The data-quality summary: one row per site, night, batch and table; flagged sites in a note."""
    headers = [
        "Site",
        "Night",
        "Batch",
        "Outcome",
        "Table",
        "Rows in",
        "Accepted",
        "Accepted %",
        "Quarantined",
        "Warnings",
        "Table rejected",
    ]
    rows = [
        [
            cell(r.site_id),
            cell(r.night),
            # the batch id is <site>_<night>_<12 hex>: the first two are in their own columns already
            str(r.batch_id).rsplit("_", 1)[-1],
            cell(r.validation_outcome),
            cell(r.table_name).replace("_", " "),
            cell(r.rows_in),
            cell(r.accepted),
            cell(r.accepted_pct),
            cell(r.quarantined),
            cell(r.warnings),
            cell(r.rejected_reason),
        ]
        for r in quality.itertuples(index=False)
    ]
    flagged = flagged_sites(quality)
    notes = (
        "Sites whose last night quarantined rows or had a table rejected: "
        + (", ".join(flagged) if flagged else "none")
        + ". Counts of submitted rows, not of patients with an attribute: not small-cell suppressed.",
    )
    return Section(
        "data-quality",
        "Data quality of the last night per site",
        "quality",
        headers,
        rows,
        notes=notes,
        numeric=numeric_columns(rows, len(headers)),
    )


def build_page(
    results: Sequence[ResultTable],
    provenance: Provenance,
    quality: pd.DataFrame | None,
    *,
    title: str,
    released: bool = True,
    figure_cache: dict[str, str] | None = None,
) -> ReportPage:
    """Pooled parts of every result first (in plan order), each site's parts after; quality; provenance."""
    page = ReportPage(title=title, released=released)
    for result in results:
        for site, frame in _parts(result):
            section = _section(result, site, frame, provenance, figure_cache)
            if site:
                page.by_site.setdefault(site, []).append(section)
            else:
                page.pooled.append(section)
    page.by_site = dict(sorted(page.by_site.items()))
    if quality is not None:
        page.quality = quality_section(quality)
    page.provenance = [
        ("Software", provenance.software),
        ("Plan", provenance.plan_name),
        ("Plan sha256", provenance.plan_sha256),
        ("Warehouse sha256", provenance.warehouse_sha256),
        *[(name, version) for name, version in provenance.libraries],
    ]
    page.lead = f"Plan {provenance.plan_name}; warehouse sha256 {provenance.warehouse_sha256}."
    page.batches = [(site, ", ".join(batches)) for site, batches in sorted(provenance.batches.items())]
    return page


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("cohortpool.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(page: ReportPage) -> str:
    """The page rendered with ``templates/report.html.j2``."""
    return _environment().get_template("report.html.j2").render(page=page)
