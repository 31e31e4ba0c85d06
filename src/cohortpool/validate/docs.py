"""The run's Data Docs, made to work offline.

GX 1.24's Data Docs pages load Bootstrap, jQuery, Font Awesome and Vega from public CDNs, and the GX
package ships none of them (only its own stylesheet, fonts and images), so there are no local copies to
point the links at. Hospital networks are often offline, and a page that fetches from the internet would
also tell a CDN who opened it. So:

- ``data_docs/index.html`` is cohortpool's own self-contained QC page (no scripts, a Content-Security-Policy
  that forbids any fetch): tables, counts, every expectation's outcome, quarantined source rows;
- ``data_docs/gx/<table>.<half>.html`` are GX's own validation-result pages, rendered by GX's renderer from
  the sanitised results (:mod:`cohortpool.validate.run`) with every remote ``<script>``, ``<link>`` and
  ``<img>`` removed, links to GX's web site (the newsletter footer, ...) reduced to their text, links into
  a GX Data Docs site that does not exist here pointed at the QC page, and GX's shipped stylesheet inlined:
  readable offline, without Bootstrap's styling. Each page names its data asset (the submitted file, with
  its sha256) and its run (the batch id and night), which GX would show as "None".

Everything is deterministic (ids and timestamps GX would randomise are replaced) so that the same
submission gives byte-identical pages. :class:`GxPages` keeps GX's renderer, its template environment
(compiled templates), the stylesheet and the suites' GX configurations for the life of a process. It is
the only part of a validation by the SQL engine that imports GX, and it runs once the tables are written
(:mod:`cohortpool.validate.results`).
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import jinja2
import pandas as pd

from cohortpool.validate.frames import release_memory
from cohortpool.validate.outcome import ValidationOutcome
from cohortpool.validate.suites import TableSuite

if TYPE_CHECKING:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    from cohortpool.validate.results import HalfResult

_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)
_REMOTE_LINK = re.compile(r"<link[^>]*\bhref=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE)
_REMOTE_IMG = re.compile(r"<img[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>", re.IGNORECASE)
#: an anchor to a web site: kept as its text
_REMOTE_ANCHOR = re.compile(r"<a\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
#: GX's footer holds only its newsletter sign-up
_FOOTER = re.compile(r"<footer>.*?</footer>", re.IGNORECASE | re.DOTALL)
#: the favicon GX links from its (absent) static folder
_ICON = re.compile(r"<link[^>]*\brel=\"shortcut icon\"[^>]*>", re.IGNORECASE)
_CSS_REMOTE_URL = re.compile(r"url\(\s*['\"]?https?://[^)]*\)", re.IGNORECASE)
#: the link from the page header to the suite's page of a GX site (here: the suite's outcomes on the QC page)
_SUITE_HREF = re.compile(r"href=\"(?:\.\./)+expectations/[^\"]*\"")
_RELATIVE_HREF = re.compile(r"href=\"(\.\./)+[^\"]*\"")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_GX_TIMESTAMP = re.compile(r"\b[0-9]{8}T[0-9]{6}\.[0-9]{6}Z\b")
#: scripts GX inlines: they drive Bootstrap and jQuery, which are not here
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.IGNORECASE | re.DOTALL)
#: the "Actions" card (show all / failed only): its buttons call the scripts above
_ACTIONS_CARD = re.compile(
    r'<div class="card mb-3">\s*<div class="card-header p-2">\s*<strong>Actions</strong>.*?\n</div>',
    re.DOTALL,
)
#: Font Awesome status icons (the font is not here): a symbol of the same colour instead
_ICON_TAG = re.compile(r'<i class="fas? [^"]*?(text-success|text-danger|text-warning)?"[^>]*></i>')
_ICON_TEXT = {"text-success": "&#10003;", "text-danger": "&#10007;", "text-warning": "!"}
_ICON_STYLE = (
    ".text-success { color: #176a2c; } .text-danger { color: #a31515; } .text-warning { color: #8a5a00; }"
)
_JINJA_TAG = re.compile(r"\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)
#: any URL left in an attribute the browser would fetch (anchors are not fetched)
REMOTE_FETCH = re.compile(
    r"\b(?:src|srcset|data)=\"https?://|<link[^>]*href=\"https?://|url\(['\"]?https?://", re.I
)


#: a quoted attribute value naming a web URL, or a CSS url() of one (page text may hold URLs: it is data,
#: HTML-escaped, never fetched, and cannot contain an unescaped quote)
_WEB_REFERENCE = re.compile(
    r"""(?:\s[\w:-]+\s*=\s*(["'])[^"']*?https?://[^"']*\1)|url\(\s*['"]?\s*https?://""", re.IGNORECASE
)


def web_references(html: str) -> list[str]:
    """The http(s) URLs ``html`` refers to in attributes or stylesheets (empty for an offline page)."""
    return [m.group(0).strip() for m in _WEB_REFERENCE.finditer(html)]


def offline_html(html: str, stylesheet: str, table: str = "") -> str:
    """A GX page with nothing left to fetch from the internet, no link out, and reproducible ids."""
    html = _REMOTE_SCRIPT.sub("", html)
    html = _SCRIPT.sub("", html)
    html = _ACTIONS_CARD.sub("", html)
    html = _ICON_TAG.sub(
        lambda m: f'<span class="{m.group(1)}">{_ICON_TEXT[m.group(1)]}</span>' if m.group(1) else "", html
    )
    html = _REMOTE_LINK.sub("", html)
    html = _REMOTE_IMG.sub("", html)
    html = _ICON.sub("", html)
    html = _FOOTER.sub("", html)
    html = _REMOTE_ANCHOR.sub(lambda m: m.group(1), html)
    html = _CSS_REMOTE_URL.sub("none", html)
    html = _SUITE_HREF.sub(
        f'href="../index.html#expectations-{table}"' if table else 'href="../index.html"', html
    )
    html = _RELATIVE_HREF.sub('href="../index.html"', html)
    html = html.replace("</head>", f"<style>\n{stylesheet}\n{_ICON_STYLE}\n</style>\n</head>", 1)
    ids: dict[str, str] = {}
    html = _UUID.sub(lambda m: ids.setdefault(m.group(0), f"id{len(ids) + 1:04d}"), html)
    html = _GX_TIMESTAMP.sub("(run)", html)
    remaining = web_references(html)
    if remaining:
        raise RuntimeError(
            f"a Data Docs page still refers to the web ({remaining[0][:120]}); extend docs.offline_html"
        )
    return html


def _gx_stylesheet() -> str:
    static = resources.files("great_expectations") / "render" / "view" / "static" / "styles"
    css = (static / "data_docs_default_styles.css").read_text(encoding="utf-8")
    # the shipped stylesheet is a Jinja template choosing a fonts folder; the fonts are not copied (the
    # browser falls back), so the tags and every url() go
    return re.sub(r"url\([^)]*\)", "none", _JINJA_TAG.sub("", css))


class GxPages:
    """GX's validation-result pages, rendered offline; keeps GX's renderer and compiled templates.

    One per process (the Validator holds it): building GX's template environment and compiling its
    templates costs more than rendering a page. Rendering is serialised (GX's renderers are not known to
    be thread-safe).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tools: tuple[Any, Any, str] | None = None
        self._configs: dict[tuple[Any, ...], dict[int, ExpectationConfiguration]] = {}

    def _renderer_view_stylesheet(self) -> tuple[Any, Any, str]:
        if self._tools is None:
            from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
            from great_expectations.render.view.view import DefaultJinjaPageView

            self._tools = (ValidationResultsPageRenderer(), DefaultJinjaPageView(), _gx_stylesheet())
        return self._tools

    def _half_configs(self, suite: TableSuite, half: str) -> dict[int, ExpectationConfiguration]:
        """Suite position -> GX's configuration of that expectation (ids reproducible), built once."""
        key = (suite.path, suite.name, half)
        if key not in self._configs:
            self._configs[key] = suite.gx_configs(half)
        return self._configs[key]

    def write(
        self,
        out: Path,
        results: dict[str, dict[str, HalfResult]],
        summary: dict[str, Any],
        suites: dict[str, TableSuite],
    ) -> dict[str, list[str]]:
        """Write ``out/gx/<table>.<half>.html`` for every table half that ran; page names by table."""
        pages: dict[str, list[str]] = defaultdict(list)
        (out / "gx").mkdir(parents=True, exist_ok=True)
        with self._lock:
            renderer, view, stylesheet = self._renderer_view_stylesheet()
            import great_expectations

            for table, halves in results.items():
                source = summary["tables"][table]
                for half, half_result in halves.items():
                    # load time and data fingerprint differ per run and say nothing a reader needs; the
                    # data asset is the submitted file, the run is the batch
                    meta = {
                        "great_expectations_version": str(great_expectations.__version__),
                        "batch_spec": {
                            "data_asset_name": source["file"],
                            "source_sha256": source["source_sha256"],
                            "cells": "as submitted (text)" if half == "text" else "typed",
                        },
                        "run_id": {"run_name": summary["batch_id"], "run_time": summary["night"]},
                    }
                    result = half_result.to_gx(self._half_configs(suites[table], half), meta)
                    html: str = view.render(renderer.render(result))
                    name = f"gx/{table}.{half}.html"
                    (out / name).write_text(offline_html(html, stylesheet, table), encoding="utf-8")
                    pages[table].append(name)
        return dict(pages)


#: quarantine lines read at once for the Data Docs page's counts
_LINES_AT_ONCE = 100_000


def _line_counts(out_dir: Path) -> list[dict[str, Any]]:
    """Lines per (table, expectation, severity), sorted, with the first 50 source rows listed.

    Read in parts of :data:`_LINES_AT_ONCE` lines, four columns: a night that quarantines 10^6 rows must
    not load its quarantine file to count it (issue 16 item 2). pandas' parser, not the csv module's,
    which refuses a cell over 128 KiB (a quarantined value can be longer)."""
    rows = []
    for name in ("quarantine.csv", "warnings.csv"):
        counts: dict[tuple[str, str, str], int] = {}
        shown: dict[tuple[str, str, str], list[str]] = {}
        parts = pd.read_csv(
            out_dir / name,
            dtype=str,
            keep_default_na=False,
            usecols=["table", "source_row", "expectation", "severity"],
            chunksize=_LINES_AT_ONCE,
        )
        keys = ["table", "expectation", "severity"]
        for part in parts:  # counted by pandas, not line by line: 10^7 lines took 50 s
            for key, size in part.groupby(keys, sort=False).size().items():
                group = cast(tuple[str, str, str], key)
                counts[group] = counts.get(group, 0) + int(size)
            numbered = part[part["source_row"] != ""]
            for key, source_rows in numbered.groupby(keys, sort=False)["source_row"]:
                listed = shown.setdefault(cast(tuple[str, str, str], key), [])
                if len(listed) <= 50:
                    listed.extend(source_rows.iloc[: 51 - len(listed)].tolist())
        for group in sorted(counts):
            table, expectation, severity = group
            first = shown.get(group, [])
            rows.append(
                {
                    "table": table,
                    "expectation": expectation,
                    "severity": severity,
                    "rows": counts[group],
                    "source_rows": ", ".join(first[:50]) + (" ..." if len(first) > 50 else ""),
                }
            )
    return rows


@cache
def _qc_template() -> jinja2.Template:
    source = resources.files("cohortpool.validate") / "templates" / "qc_page.html.j2"
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(source.read_text(encoding="utf-8"))


def write_data_docs(
    out: Path,
    summary: dict[str, Any],
    outcome: ValidationOutcome,
    results: dict[str, dict[str, HalfResult]],
    suites: dict[str, TableSuite],
    gx_pages: GxPages | None = None,
) -> Path:
    """Write ``index.html`` (self-contained) and the offline GX pages into ``out``; return the index."""
    out.mkdir(parents=True, exist_ok=True)
    # the quarantine's lines are counted before GX is imported for its pages, and their parts given back:
    # a night that quarantines every row peaked 70 MB higher counting them beside GX (issue 16 item 2)
    line_counts = _line_counts(out.parent)
    release_memory()
    pages = (gx_pages or GxPages()).write(out, results, summary, suites)
    checks_by_table: dict[str, list[Any]] = defaultdict(list)
    for check in outcome.checks:
        checks_by_table[check.table].append(check)
    html = _qc_template().render(
        summary=summary,
        gx_pages=pages,
        checks_by_table={t: checks_by_table[t] for t in suites if t in checks_by_table},
        line_counts=line_counts,
    )
    index = out / "index.html"
    index.write_text(html, encoding="utf-8")
    return index
