"""Figures as inline SVG text: forest plots and the detection-rate chart.

Deterministic by construction, so the same results give a byte-identical report: the Agg backend, no
date in the SVG metadata, text kept as ``<text>`` (``svg.fonttype = none``: no embedded glyph paths whose
ids could vary) and ``svg.hashsalt`` set to the figure's name, which makes the clip-path ids stable and
distinct between the figures of one HTML page.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display at the hub; must precede pyplot

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from cohortpool.report.layout import effect
from cohortpool.stats.result import ResultTable

#: modality order and colours (colour-blind safe: Okabe-Ito)
MODALITY_ORDER = ("XR", "CT", "MR", "ALL")
MODALITY_NAMES = {"XR": "X-ray", "CT": "CT", "MR": "MRI", "ALL": "Combined"}
MODALITY_COLOURS = {"XR": "#E69F00", "CT": "#56B4E9", "MR": "#009E73", "ALL": "#0072B2"}
_ID_SAFE = re.compile(r"[^A-Za-z0-9_-]+")
_ID_REF = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')
_XML_PROLOGUE = re.compile(r"^<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?", re.DOTALL)


@contextmanager
def _style(name: str) -> Iterator[None]:
    with matplotlib.rc_context(
        {
            "svg.hashsalt": name,
            "svg.fonttype": "none",
            "font.family": "DejaVu Sans",  # ships with matplotlib: same text metrics on every machine
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        yield


def to_svg(figure: Figure, name: str) -> str:
    """The figure as an ``<svg>`` element ready to inline into HTML (no XML prologue, no date)."""
    buffer = io.StringIO()
    with _style(name):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(figure)
    svg = _XML_PROLOGUE.sub("", buffer.getvalue())
    # matplotlib numbers its element ids per figure (figure_1, axes_1, ...): prefix them with the figure's
    # name so several figures inline in one page keep unique ids and their url(#...) references intact
    prefix = _ID_SAFE.sub("-", name)
    svg = _ID_REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{name}" class="figure" ', 1)


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


METHOD_NAMES = {"mantel_haenszel": "MH", "dersimonian_laird": "DL random effects"}


def _panels(frame: pd.DataFrame, title: str) -> list[tuple[bool, pd.DataFrame]]:
    """One panel per effect measure (odds ratios on a log axis, differences on a linear one)."""
    if "measure" not in frame.columns:
        log = bool(frame["scale"].eq("log").all()) if "scale" in frame.columns else "ratio" in title.lower()
        return [(log, frame)]
    panels = []
    for measure in dict.fromkeys(frame["measure"].astype(str)):
        part = frame[frame["measure"].astype(str) == measure]
        panels.append(("ratio" in measure, part.reset_index(drop=True)))
    return panels


def _row_label(row: pd.Series, outcome: bool = True) -> str:
    """``Outcome  site01`` (or just ``site01`` in a plot of one outcome), ``Outcome  Pooled (MH)``."""
    prefix = f"{row['label']}  " if outcome else ""
    if not bool(row["is_pooled"]):
        return f"{prefix}{row['site_id']}"
    method = METHOD_NAMES.get(str(row.get("method", "")), "")
    return f"{prefix}Pooled" + (f" ({method})" if method else "")


def _draw_forest(axis: Any, frame: pd.DataFrame, ratio: bool, outcome: bool = True) -> None:
    rows = len(frame)
    weights = [_num(w) for w in frame["weight"]]
    max_weight = max((w for w in weights if not math.isnan(w)), default=1.0) or 1.0
    for position, row in frame.iterrows():
        y = rows - 1 - int(position)  # type: ignore[call-overload]
        estimate, low, high = _num(row["estimate"]), _num(row["ci_low"]), _num(row["ci_high"])
        if not (math.isfinite(estimate) and math.isfinite(low) and math.isfinite(high)):
            suppressed = math.isnan(estimate) and not bool(row["is_pooled"])
            text = "suppressed (small cells)" if suppressed else "not estimable"
            axis.annotate(
                text,
                xy=(1.01, y),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=8,
                color="#777777",
            )
            continue
        axis.plot([low, high], [y, y], color="black", linewidth=1)
        if bool(row["is_pooled"]):
            axis.fill([low, estimate, high, estimate], [y, y + 0.3, y, y - 0.3], color="#0072B2", zorder=3)
        else:
            weight = _num(row["weight"])
            size = 20 + 120 * (weight / max_weight if not math.isnan(weight) else 0)
            axis.scatter([estimate], [y], marker="s", s=size, color="#555555", zorder=3)
        axis.annotate(
            f"{effect(estimate, ratio)} ({effect(low, ratio)} to {effect(high, ratio)})",
            xy=(1.01, y),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=8,
        )
    axis.axvline(1.0 if ratio else 0.0, color="#999999", linestyle="--", linewidth=0.8)
    if ratio:
        axis.set_xscale("log")
        # plain numbers (0.5, 1, 2, 5 ...) read better than powers of ten on an odds-ratio axis
        finite = [float(v) for c in ("ci_low", "ci_high") for v in frame[c] if 0 < _num(v) < math.inf]
        decades = math.log10(max(finite) / min(finite)) if finite else 0.0
        # 1-2-5 ticks on a narrow axis; powers of ten only on a wide one, where 1-2-5 labels would collide
        axis.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 3 else (1.0,)))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_yticks(range(rows), [_row_label(r, outcome) for _, r in frame.iloc[::-1].iterrows()])
    axis.set_ylim(-0.8, rows - 0.2)
    axis.set_xlabel("Odds ratio (log scale), 95 % CI" if ratio else "Difference, 95 % CI")


def forest_svg(result: ResultTable, outcome_in_labels: bool = True) -> str:
    """A forest plot: per-site squares sized by weight, pooled estimates as diamonds, 95 % CIs.

    Odds ratios and mean differences of one result are drawn in separate panels (their axes differ).
    ``outcome_in_labels=False`` labels rows by site only (a plot of one outcome, named in its title).
    """
    panels = _panels(result.frame.reset_index(drop=True), result.title)
    heights = [max(len(part), 2) for _, part in panels]
    with _style(result.name):
        figure, axes = plt.subplots(
            len(panels),
            1,
            squeeze=False,
            gridspec_kw={"height_ratios": heights},
            figsize=(7.5, 0.7 * len(panels) + 0.3 * sum(heights)),
        )
        # no tight_layout (it measures every label again, seconds on a 60-row plot): the panels get
        # room for their x labels here, and savefig's tight bounding box takes in the long y labels
        mean_panel_inches = 0.3 * sum(heights) / len(panels)
        figure.subplots_adjust(hspace=0.9 / mean_panel_inches)  # about 0.9 in between panels
        for axis, (ratio, part) in zip(axes[:, 0], panels, strict=True):
            _draw_forest(axis, part, ratio, outcome_in_labels)
        return to_svg(figure, result.name)


def _detection_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The pooled rows if the frame is site-stratified (a chart of every site would be unreadable)."""
    if "site_id" not in frame.columns:
        return frame
    site = frame["site_id"].fillna("").astype(str)
    pooled = frame[site.isin(["", "all", "ALL", "pooled", "Pooled"])]
    return pooled if len(pooled) else frame


def detection_svg(result: ResultTable) -> str:
    """Grouped bars: detection rate (%) of each finding by modality, one panel per diagnosis.

    Suppressed rates (text such as ``<5`` in a released frame) draw as an empty hatched outline with the
    mark printed, never as a bar whose length would give the hidden count back.
    """
    frame = _detection_rows(result.frame)
    diagnoses = list(dict.fromkeys(frame["diagnosis"]))
    findings = list(dict.fromkeys(frame["finding"]))
    modalities = [m for m in MODALITY_ORDER if m in set(frame["modality"])]
    with _style(result.name):
        figure, axes = plt.subplots(
            1,
            len(diagnoses),
            figsize=(3.6 * len(diagnoses) + 1, 0.55 * len(findings) * len(modalities) / 3 + 1.2),
            sharey=True,
            squeeze=False,
        )
        width = 0.8 / max(len(modalities), 1)
        for axis, diagnosis in zip(axes[0], diagnoses, strict=True):
            part = frame[frame["diagnosis"] == diagnosis]
            for m_index, modality in enumerate(modalities):
                for f_index, finding in enumerate(findings):
                    cell = part[(part["finding"] == finding) & (part["modality"] == modality)]
                    if cell.empty:
                        continue
                    y = f_index + (m_index - (len(modalities) - 1) / 2) * width
                    # from the counts, not "rate": no guessing whether a rate is a fraction or a percent
                    detected, n = _num(cell["detected"].iloc[0]), _num(cell["n"].iloc[0])
                    rate = detected / n * 100 if n > 0 else math.nan
                    label = MODALITY_NAMES.get(modality, modality) if f_index == 0 else None
                    if math.isnan(rate):
                        axis.barh(
                            y, 100, height=width, fill=False, hatch="///", edgecolor="#BBBBBB", linewidth=0
                        )
                        axis.text(1, y, str(cell["rate"].iloc[0]), va="center", fontsize=7)
                        continue
                    axis.barh(
                        y, rate, height=width, color=MODALITY_COLOURS.get(modality, "#777777"), label=label
                    )
            axis.set_title(str(diagnosis), fontsize=10)
            axis.set_xlim(0, 100)
            axis.set_xlabel("Detected, % of vertebrae")
            axis.set_yticks(range(len(findings)), [f.replace("_", " ") for f in findings])
        axes[0][0].invert_yaxis()  # once: the panels share the y axis (first finding on top)
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
        return to_svg(figure, result.name)


def figure_svg(result: ResultTable) -> str | None:
    """The figure for a result, or None for plain tables and for results with no rows (their notes say
    why, e.g. a night without reads on one modality)."""
    if result.frame.empty:
        return None
    if result.kind == "forest":
        return forest_svg(result)
    if result.kind == "detection":
        return detection_svg(result)
    return None
