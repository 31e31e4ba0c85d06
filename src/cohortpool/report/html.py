"""The report as one self-contained HTML file: tables laid out like the paper's, figures inline as SVG.

Self-contained means a researcher can e-mail it or open it offline: CSS is inline, figures are inline
``<svg>``, there is no script and no external link (the one link out of the page, to the warehouse's data
dictionary, is to a file beside it in the report folder). Nothing time-dependent is printed, so the same
results and provenance give the same bytes. The pooled results come first; with many sites each site's
sections start folded (``<details>``), and forest plots show the pooled rows with each outcome's sites
folded below (:mod:`~cohortpool.report.forest`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from cohortpool.report.figures import figure_svg, forest_svg
from cohortpool.report.forest import COLLAPSE_SITES_ABOVE, forest_view
from cohortpool.report.layout import lay_out, parts
from cohortpool.report.page import ReportPage, Section, numeric_columns
from cohortpool.report.provenance import Provenance, sites_of
from cohortpool.report.quality import quality_sections
from cohortpool.stats.result import ResultTable

__all__ = ["ReportPage", "Section", "build_page", "numeric_columns", "render_html"]

_ANCHOR = re.compile(r"[^a-z0-9_-]+")
#: a cell ending in a parenthesised interval or percentage: that part wraps as one piece
_TRAILING_PART = re.compile(r"^(.*\S) (\([^()]*\))$")


def _cache_key(result: ResultTable, detail: str) -> str:
    digest = hashlib.sha256(f"{result.name}\n{detail}".encode())
    digest.update(pd.util.hash_pandas_object(result.frame.astype(str), index=True).to_numpy().tobytes())
    return digest.hexdigest()


def _figure(result: ResultTable, cache: dict[str, str] | None) -> str:
    """The result's SVG, drawn once per distinct content (the internal and released pages share most)."""
    if cache is None:
        return figure_svg(result) or ""
    key = _cache_key(result, "figure")
    if key not in cache:
        cache[key] = figure_svg(result) or ""
    return cache[key]


def _forest_drawer(cache: dict[str, str] | None) -> Callable[[ResultTable, bool], str]:
    def draw(result: ResultTable, outcome_in_labels: bool) -> str:
        if result.frame.empty:
            return ""
        if cache is None:
            return forest_svg(result, outcome_in_labels)
        key = _cache_key(result, f"forest {outcome_in_labels}")
        if key not in cache:
            cache[key] = forest_svg(result, outcome_in_labels)
        return cache[key]

    return draw


def _section(
    result: ResultTable,
    site: str,
    frame: pd.DataFrame,
    provenance: Provenance,
    cache: dict[str, str] | None = None,
    *,
    released: bool = True,
    collapse_above: int = COLLAPSE_SITES_ABOVE,
) -> Section:
    part = replace(result, frame=frame)
    covered = sites_of(part)
    suffix = f"-{site}" if site else ""
    section = Section(
        anchor=_ANCHOR.sub("-", f"{result.name}{suffix}".lower()),
        title=result.title if not site else f"{result.title} ({site})",
        kind=result.kind,
        headers=[],
        rows=[],
        notes=result.notes,
        batches=provenance.batches_behind(part),
        sites="all sites" if covered is None else ", ".join(sorted(covered)),
    )
    if result.kind == "forest":
        view = forest_view(part, _forest_drawer(cache), released=released, collapse_above=collapse_above)
        section.figure, section.headers, section.rows = view.figure, view.headers, view.rows
        section.omitted, section.details = view.omitted, view.details
    else:
        section.headers, section.rows = lay_out(result, frame)
        if site == "" and result.kind == "detection":
            # our own matplotlib output: text in it is XML-escaped by matplotlib
            section.figure = Markup(_figure(part, cache)) or None  # noqa: S704
    section.numeric = numeric_columns(section.rows, len(section.headers))
    return section


def build_page(
    results: Sequence[ResultTable],
    provenance: Provenance,
    quality: pd.DataFrame | None,
    *,
    title: str,
    released: bool = True,
    figure_cache: dict[str, str] | None = None,
    expected_sites: Iterable[str] = (),
    collapse_sites_above: int = COLLAPSE_SITES_ABOVE,
    dictionary: str | None = None,
) -> ReportPage:
    """Pooled parts of every result first (in plan order), each site's parts after; quality; provenance.

    Parameters
    ----------
    expected_sites
        Sites the consortium configures: one that never sent a night is named in the data-quality part.
    collapse_sites_above
        With more sites than this, each site's sections start folded and forest plots draw the pooled
        rows with each outcome's sites folded below.
    dictionary
        Relative link to the warehouse's data dictionary page, when the report folder has one.
    """
    page = ReportPage(title=title, released=released, dictionary=dictionary)
    for result in results:
        for site, frame in parts(result):
            section = _section(
                result,
                site,
                frame,
                provenance,
                figure_cache,
                released=released,
                collapse_above=collapse_sites_above,
            )
            if site:
                page.by_site.setdefault(site, []).append(section)
            else:
                page.pooled.append(section)
    page.by_site = dict(sorted(page.by_site.items()))
    page.collapse_sites = len(page.by_site) > collapse_sites_above
    if quality is not None:
        page.quality = quality_sections(quality, expected_sites)
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


def cell_html(text: str, numeric: bool = False) -> Markup:
    """A cell's text, escaped. A number never breaks inside (a date, ``65.98 ± 13.67``); only between
    it and a trailing ``(interval)``, which then moves to the next line whole."""
    if not numeric:
        return escape(text)
    match = _TRAILING_PART.match(text)
    if not match:
        return Markup('<span class="ci">{}</span>').format(text)
    return Markup('<span class="ci">{}</span> <span class="ci">{}</span>').format(
        match.group(1), match.group(2)
    )


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("cohortpool.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["cell"] = cell_html
    return environment


def render_html(page: ReportPage) -> str:
    """The page rendered with ``templates/report.html.j2``."""
    return _environment().get_template("report.html.j2").render(page=page)
