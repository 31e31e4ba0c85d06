"""Write the whole report folder from results and analysis sets (no database here: the CLI fetches).

Layout of ``OUT``::

    report.html             self-contained report, small cells suppressed: fit to leave the hub
    tables/<name>.csv       every table, suppressed as in the report
    tables.xlsx             the same tables in the report's layout, one sheet each, plus "About" (provenance)
    dictionary.html         the warehouse's data dictionary, when the caller wrote it (linked from the page)
    internal/               INTERNAL, never to leave the hub (see internal/README.txt)
      report.html           the report without suppression, bannered as internal
      tables/<name>.csv     unsuppressed tables
      analysis_sets/*.sav   the analysis views as SPSS files (row level, pseudonymised)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cohortpool.report.exports import write_csvs, write_savs, write_xlsx
from cohortpool.report.forest import COLLAPSE_SITES_ABOVE
from cohortpool.report.html import build_page, render_html
from cohortpool.report.provenance import Provenance
from cohortpool.report.release import release
from cohortpool.stats.result import ResultTable

INTERNAL_README = """INTERNAL: keep inside the hub.

These files are NOT small-cell suppressed and the .sav files hold one row per patient, vertebra or read
(pseudonymised, but row level). Share outside the hub only report.html, tables/ and tables.xlsx from the
folder above, which are suppressed.
"""

#: the warehouse's data dictionary page, when the caller put one in the report folder
DICTIONARY_PAGE = "dictionary.html"
#: the analysis views exported for SPSS (findings_long is the same data as vertebra_reads, unpivoted)
SPSS_SETS = ("patients", "vertebrae", "vertebra_reads")


@dataclass
class ReportFiles:
    """What was written, for the CLI to list."""

    html: Path
    xlsx: Path
    csvs: list[Path] = field(default_factory=list)
    internal: list[Path] = field(default_factory=list)


def _about(provenance: Provenance, threshold: int) -> list[tuple[str, str]]:
    rows = [
        ("software", provenance.software),
        ("plan", provenance.plan_name),
        ("plan_sha256", provenance.plan_sha256),
        ("warehouse_sha256", provenance.warehouse_sha256),
        ("small_cell_threshold", str(threshold)),
    ]
    rows += [(f"library {name}", version) for name, version in provenance.libraries]
    rows += [(f"batches {site}", ", ".join(b)) for site, b in sorted(provenance.batches.items())]
    return rows


def write_report(
    results: Sequence[ResultTable],
    frames: Mapping[str, pd.DataFrame],
    out_dir: Path,
    *,
    provenance: Provenance,
    quality: pd.DataFrame | None,
    threshold: int,
    title: str,
    expected_sites: Iterable[str] = (),
    collapse_sites_above: int = COLLAPSE_SITES_ABOVE,
) -> ReportFiles:
    """Render and export everything; the same inputs give byte-identical files.

    ``expected_sites`` (the consortium's configured sites) lets the data-quality part name a site that
    never sent; with more sites than ``collapse_sites_above`` each site's sections start folded. A
    ``dictionary.html`` already in ``out_dir`` (the warehouse's data dictionary,
    :func:`cohortpool.warehouse.write_dictionary_page`) is linked from both pages.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    released = release(results, threshold)
    figures: dict[str, str] = {}  # figures whose data suppression left alone are drawn once for both pages
    html = out_dir / "report.html"
    expected = tuple(expected_sites)
    dictionary = DICTIONARY_PAGE if (out_dir / DICTIONARY_PAGE).is_file() else None
    page = build_page(
        released, provenance, quality, title=title, released=True, figure_cache=figures,
        dictionary=dictionary, expected_sites=expected, collapse_sites_above=collapse_sites_above,
    )  # fmt: skip
    html.write_text(render_html(page), encoding="utf-8")
    files = ReportFiles(
        html=html,
        xlsx=write_xlsx(released, out_dir / "tables.xlsx", _about(provenance, threshold)),
        csvs=write_csvs(released, out_dir / "tables"),
    )
    internal = out_dir / "internal"
    internal.mkdir(exist_ok=True)
    (internal / "README.txt").write_text(INTERNAL_README, encoding="utf-8")
    internal_html = internal / "report.html"
    internal_html.write_text(
        render_html(
            build_page(
                results,
                provenance,
                quality,
                title=f"{title} (INTERNAL)",
                released=False,
                figure_cache=figures,
                dictionary=f"../{dictionary}" if dictionary else None,
                expected_sites=expected,
                collapse_sites_above=collapse_sites_above,
            )
        ),
        encoding="utf-8",
    )
    files.internal = [internal_html, *write_csvs(results, internal / "tables")]
    levels = {column: order for result in results for column, order in result.levels.items()}
    sets = {k: frames[k] for k in SPSS_SETS if k in frames}
    files.internal += write_savs(sets, internal / "analysis_sets", levels)
    return files
