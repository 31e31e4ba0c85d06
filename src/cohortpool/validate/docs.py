"""The run's Data Docs, made to work offline.

GX 1.24's Data Docs pages load Bootstrap, jQuery, Font Awesome and Vega from public CDNs, and the GX
package ships none of them (only its own stylesheet, fonts and images), so there are no local copies to
point the links at. Hospital networks are often offline, and a page that fetches from the internet would
also tell a CDN who opened it. So:

- ``data_docs/index.html`` is cohortpool's own self-contained QC page (no scripts, a Content-Security-Policy
  that forbids any fetch): tables, counts, every expectation's outcome, quarantined source rows;
- ``data_docs/gx/<table>.<half>.html`` are GX's own validation-result pages, rendered by GX's renderer from
  the sanitised results (:mod:`cohortpool.validate.run`) with every remote ``<script>``, ``<link>`` and
  ``<img>`` removed and GX's shipped stylesheet inlined: readable offline, without Bootstrap's styling.

Everything is deterministic (ids and timestamps GX would randomise are replaced) so that the same
submission gives byte-identical pages.
"""

from __future__ import annotations

import re
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd

from cohortpool.validate.outcome import ValidationOutcome
from cohortpool.validate.suites import TableSuite

if TYPE_CHECKING:
    from cohortpool.validate.run import TableRun

_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)
_REMOTE_LINK = re.compile(r"<link[^>]*\bhref=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE)
_REMOTE_IMG = re.compile(r"<img[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE)
_RELATIVE_HREF = re.compile(r"href=\"(\.\./)+[^\"]*\"")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_GX_TIMESTAMP = re.compile(r"\b[0-9]{8}T[0-9]{6}\.[0-9]{6}Z\b")
#: any URL left in an attribute the browser would fetch (anchors are not fetched)
REMOTE_FETCH = re.compile(
    r"\b(?:src|srcset|data)=\"https?://|<link[^>]*href=\"https?://|url\(https?://", re.I
)


def offline_html(html: str, stylesheet: str) -> str:
    """A GX page with nothing left to fetch from the internet, and reproducible ids."""
    html = _REMOTE_SCRIPT.sub("", html)
    html = _REMOTE_LINK.sub("", html)
    html = _REMOTE_IMG.sub("", html)
    html = _RELATIVE_HREF.sub('href="../index.html"', html)
    html = html.replace("</head>", f"<style>\n{stylesheet}\n</style>\n</head>", 1)
    ids: dict[str, str] = {}
    html = _UUID.sub(lambda m: ids.setdefault(m.group(0), f"id{len(ids) + 1:04d}"), html)
    html = _GX_TIMESTAMP.sub("(run)", html)
    if REMOTE_FETCH.search(html):
        raise RuntimeError("a Data Docs page still references a remote resource; extend docs.offline_html")
    return html


def _gx_stylesheet() -> str:
    static = resources.files("great_expectations") / "render" / "view" / "static" / "styles"
    css = (static / "data_docs_default_styles.css").read_text(encoding="utf-8")
    # the shipped stylesheet names fonts by relative URL; they are not copied, the browser falls back
    return re.sub(r"url\([^)]*\)", "none", css)


def _render_gx_pages(out: Path, runs: dict[str, TableRun]) -> dict[str, list[str]]:
    from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
    from great_expectations.render.view.view import DefaultJinjaPageView

    stylesheet = _gx_stylesheet()
    renderer = ValidationResultsPageRenderer()
    view = DefaultJinjaPageView()
    pages: dict[str, list[str]] = defaultdict(list)
    (out / "gx").mkdir(parents=True, exist_ok=True)
    for table, run in runs.items():
        for half, result in run.results.items():
            # load time and data fingerprint differ per run and say nothing a reader needs
            meta: dict[str, Any] = dict(result.meta)
            meta.pop("batch_markers", None)
            result.meta = meta
            html: str = view.render(renderer.render(result))  # type: ignore[no-untyped-call]
            name = f"gx/{table}.{half}.html"
            (out / name).write_text(offline_html(html, stylesheet), encoding="utf-8")
            pages[table].append(name)
    return dict(pages)


def _line_counts(out_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for name in ("quarantine.csv", "warnings.csv"):
        lines = pd.read_csv(out_dir / name, dtype=str, keep_default_na=False)
        for (table, expectation, severity), group in lines.groupby(
            ["table", "expectation", "severity"], sort=True
        ):
            shown = [r for r in group["source_row"] if r]
            listed = ", ".join(shown[:50]) + (" ..." if len(shown) > 50 else "")
            rows.append(
                {
                    "table": table,
                    "expectation": expectation,
                    "severity": severity,
                    "rows": len(group),
                    "source_rows": listed,
                }
            )
    return rows


def write_data_docs(
    out: Path,
    summary: dict[str, Any],
    outcome: ValidationOutcome,
    runs: dict[str, TableRun],
    suites: dict[str, TableSuite],
) -> Path:
    """Write ``index.html`` (self-contained) and the offline GX pages into ``out``; return the index."""
    out.mkdir(parents=True, exist_ok=True)
    gx_pages = _render_gx_pages(out, runs)
    checks_by_table: dict[str, list[Any]] = defaultdict(list)
    for check in outcome.checks:
        checks_by_table[check.table].append(check)
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        (resources.files("cohortpool.validate") / "templates" / "qc_page.html.j2").read_text(encoding="utf-8")
    )
    html = template.render(
        summary=summary,
        gx_pages=gx_pages,
        checks_by_table={t: checks_by_table[t] for t in suites if t in checks_by_table},
        line_counts=_line_counts(out.parent),
    )
    index = out / "index.html"
    index.write_text(html, encoding="utf-8")
    return index
