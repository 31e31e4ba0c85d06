"""The report as one self-contained HTML file: tables laid out like the paper's, figures inline as SVG.

Self-contained means a researcher can e-mail it or open it offline: CSS is inline, figures are inline
``<svg>``, there is no script and no external link. Nothing time-dependent is printed, so the same results
and provenance give the same bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from cohortpool.report.figures import MODALITY_NAMES, MODALITY_ORDER, figure_svg
from cohortpool.report.provenance import Provenance, sites_of
from cohortpool.report.release import groups_of
from cohortpool.stats.result import ResultTable

TEST_NAMES = {
    "student_t": "Student t",
    "welch_t": "Welch t",
    "mann_whitney": "Mann-Whitney U",
    "pearson_chi2": "χ²",
    "yates_chi2": "χ² (continuity corrected)",
    "fisher_exact": "Fisher exact",
    "fisher_freeman_halton": "Fisher-Freeman-Halton",
}
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
    #: how many leading columns are labels (left-aligned); the rest are numbers
    label_columns: int = 1
    figure: Markup | None = None
    batches: tuple[str, ...] = ()
    sites: str = "all sites"


@dataclass
class ReportPage:
    """The whole page: sections grouped for the table of contents."""

    title: str
    lead: str = ""
    pooled: list[Section] = field(default_factory=list)
    by_site: list[Section] = field(default_factory=list)
    figures: list[Section] = field(default_factory=list)
    quality: Section | None = None
    provenance: list[tuple[str, str]] = field(default_factory=list)
    batches: list[tuple[str, str]] = field(default_factory=list)
    released: bool = True


def text(value: Any, decimals: int = 3) -> str:
    """A cell as printed: empty for missing, fixed decimals for floats, integers without a point."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.{decimals}f}"
    if hasattr(value, "item"):
        return text(value.item(), decimals)
    return str(value)


def _label(row: pd.Series) -> str:
    variable = str(row.get("variable", "")).replace("_", " ")
    level = text(row.get("level"))
    return f"{variable}: {level}" if level else variable


def _statistic(row: pd.Series) -> str:
    statistic = text(row.get("statistic"))
    df = row.get("df")
    if statistic and df is not None and text(df):
        df_value = float(df) if not isinstance(df, str) else math.nan
        shown = f"{df_value:g}" if not math.isnan(df_value) else str(df)
        return f"{statistic} (df {shown})"
    return statistic


def _comparison(result: ResultTable) -> tuple[list[str], list[list[str]]]:
    frame = result.frame
    groups = groups_of(frame)
    site_col = "site_id" in frame.columns and frame["site_id"].astype(str).nunique() > 1
    headers = ["Site"] if site_col else []
    constant: dict[str, str | None] = {}
    for group in groups:
        sizes = {text(v) for v in frame[f"n_{group}"]}
        constant[group] = sizes.pop() if len(sizes) == 1 else None
        headers.append(f"{group} (n = {constant[group]})" if constant[group] else group)
    headers += ["P", "Test", "Statistic"]
    has_warnings = "warnings" in frame.columns and any(text(w) for w in frame["warnings"])
    if has_warnings:
        headers.append("Remarks")
    rows: list[list[str]] = []
    for _, row in frame.iterrows():
        cells = [text(row["site_id"])] if site_col else []
        cells.append(_label(row))
        for group in groups:
            summary = text(row[f"summary_{group}"])
            if constant[group] is None and text(row[f"n_{group}"]):
                summary = f"{summary} [n = {text(row[f'n_{group}'])}]"
            cells.append(summary)
        cells += [
            text(row.get("p_display")),
            TEST_NAMES.get(text(row.get("test")), text(row.get("test"))),
            _statistic(row),
        ]
        if has_warnings:
            cells.append(text(row.get("warnings")))
        rows.append(cells)
    headers.insert(1 if site_col else 0, "Variable")
    return headers, rows


def _detection(result: ResultTable) -> tuple[list[str], list[list[str]]]:
    """Table 3's layout: a finding per row, detected n (%) per diagnosis and modality."""
    frame = result.frame
    diagnoses = list(dict.fromkeys(frame["diagnosis"].astype(str)))
    present = set(frame["modality"].astype(str))
    modalities = [m for m in MODALITY_ORDER if m in present] + sorted(present - set(MODALITY_ORDER))
    site_col = "site_id" in frame.columns and frame["site_id"].astype(str).nunique() > 1
    headers = (["Site"] if site_col else []) + ["Finding"]
    headers += [f"{d} {MODALITY_NAMES.get(m, m)}" for d in diagnoses for m in modalities]
    keys = ["site_id", "finding"] if site_col else ["finding"]
    cells: dict[tuple[str, ...], dict[tuple[str, str], str]] = {}
    for _, row in frame.iterrows():
        key = tuple(text(row[k]) for k in keys)
        detected, n = row["detected"], row["n"]
        if isinstance(detected, str) or isinstance(n, str):
            shown = str(detected) if isinstance(detected, str) else f"{text(detected)} [n {n}]"
        else:
            share = 100.0 * float(detected) / float(n) if float(n) > 0 else math.nan
            shown = f"{int(detected)} ({text(share, 2)})" if not math.isnan(share) else f"{int(detected)}"
        cells.setdefault(key, {})[(str(row["diagnosis"]), str(row["modality"]))] = shown
    rows = []
    for key, values in cells.items():
        label = [*key[:-1], key[-1].replace("_", " ")]
        rows.append(label + [values.get((d, m), "") for d in diagnoses for m in modalities])
    return headers, rows


def _forest(result: ResultTable) -> tuple[list[str], list[list[str]]]:
    headers = ["Outcome", "Site", "Estimate (95 % CI)", "Weight"]
    rows = []
    for _, row in result.frame.iterrows():
        site = "Pooled" if bool(row["is_pooled"]) else text(row["site_id"])
        estimate = f"{text(row['estimate'], 2)} ({text(row['ci_low'], 2)} to {text(row['ci_high'], 2)})"
        rows.append([text(row["label"]), site, estimate, text(row["weight"], 1)])
    return headers, rows


def section(result: ResultTable, provenance: Provenance) -> Section:
    """The drawable form of one result (its table, its figure, the batches behind it)."""
    if result.kind == "detection":
        headers, rows = _detection(result)
    elif result.kind == "forest":
        headers, rows = _forest(result)
    else:
        headers, rows = _comparison(result)
    svg = figure_svg(result)
    sites = sites_of(result)
    labels = sum(1 for h in headers[:3] if h in ("Site", "Variable", "Finding", "Outcome"))
    return Section(
        anchor=_ANCHOR.sub("-", result.name.lower()),
        title=result.title,
        kind=result.kind,
        headers=headers,
        rows=rows,
        notes=result.notes,
        label_columns=max(labels, 1),
        # our own matplotlib output: text in it is XML-escaped by matplotlib
        figure=Markup(svg) if svg is not None else None,  # noqa: S704
        batches=provenance.batches_behind(result),
        sites="all sites" if sites is None else ", ".join(sorted(sites)),
    )


def quality_section(quality: pd.DataFrame) -> Section:
    """The data-quality summary table (one row per site, night and table)."""
    headers = [
        "Site",
        "Night",
        "Batch",
        "Outcome",
        "Table",
        "Rows in",
        "Accepted",
        "Quarantined",
        "Warnings",
        "Rejected",
        "Accepted %",
    ]
    rows = [[text(v) for v in row] for row in quality.itertuples(index=False)]
    return Section(
        "data-quality", "Data quality of the last night per site", "quality", headers, rows, label_columns=5
    )


def build_page(
    results: Sequence[ResultTable],
    provenance: Provenance,
    quality: pd.DataFrame | None,
    *,
    title: str,
    released: bool = True,
) -> ReportPage:
    """Sort results into pooled tables, site tables and figures; add quality and provenance."""
    page = ReportPage(title=title, released=released)
    for result in results:
        part = section(result, provenance)
        if result.kind != "table":
            page.figures.append(part)
        elif sites_of(result) is None or len(sites_of(result) or ()) > 1:
            page.pooled.append(part)
        else:
            page.by_site.append(part)
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
