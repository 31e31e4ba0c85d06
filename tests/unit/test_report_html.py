"""The HTML report: self-contained, deterministic, laid out like the paper's tables."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pandas as pd

from cohortpool.report.html import build_page, render_html
from cohortpool.report.provenance import Provenance, batches_by_site
from cohortpool.report.release import release
from report_results import analysis_sets, paper_results

PROVENANCE = Provenance(
    plan_name="vcf_study",
    plan_sha256="a" * 64,
    warehouse_sha256="b" * 64,
    batches=batches_by_site(analysis_sets()),
    libraries=(("pandas", "3.1.1"),),
)
QUALITY = pd.DataFrame(
    {
        "site_id": ["site01", "site01"],
        "night": ["2026-11-24", "2026-11-24"],
        "batch_id": ["site01_2026-11-24_aaaaaaaaaaaa"] * 2,
        "validation_outcome": ["quarantined"] * 2,
        "table_name": ["clinical", "reads"],
        "rows_in": [81, 423],
        "accepted": [80, 423],
        "quarantined": [1, 0],
        "warnings": [0, 2],
        "rejected_reason": ["", ""],
        "accepted_pct": ["98.8", "100.0"],
    }
)


def _html(released: bool = True) -> str:
    results = release(paper_results(), 5) if released else paper_results()
    return render_html(build_page(results, PROVENANCE, QUALITY, title="VCF study", released=released))


class _Tables(HTMLParser):
    """Collects each table's cell text, to check the page as a reader sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def test_report_is_self_contained() -> None:
    html = _html()
    tags = set(_tables(html).tags)
    assert not ({"script", "link", "img", "iframe", "object"} & tags)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "@import" not in html and "url(http" not in html
    assert html.count("<svg ") == 2  # forest plot and detection chart, inline


def test_same_results_give_identical_html() -> None:
    assert _html() == _html()


def test_table1_reads_like_the_paper() -> None:
    parsed = _tables(_html())
    header, *rows = parsed.tables[0]
    assert header[:5] == ["Variable", "OP (n = 90)", "MET (n = 51)", "P", "Test"]
    assert rows[0][:5] == ["Age years", "69.58 ± 8.46", "62.13 ± 10.77", "< 0.001", "Student t"]
    assert rows[1][:4] == ["Sex = M", "9 (10.00)", "36 (70.59)", "< 0.001"]
    assert rows[2][3] == "0.468"


def test_released_report_shows_suppressed_cells_and_says_so() -> None:
    html = _html()
    cells = [c for t in _tables(html).tables for row in t for c in row]
    assert "<5" in cells and "3 (7.50)" not in cells
    assert "Release version" in html and "INTERNAL" not in html


def test_internal_variant_is_bannered_and_unsuppressed() -> None:
    html = _html(released=False)
    cells = [c for t in _tables(html).tables for row in t for c in row]
    assert "3 (7.50)" in cells
    assert "INTERNAL, NOT FOR RELEASE" in html


def test_provenance_names_plan_warehouse_and_batches_behind_each_table() -> None:
    html = _html()
    assert "a" * 64 in html and "b" * 64 in html
    site02_section = html[html.index('id="table1-site02"') :]
    site02_section = site02_section[: site02_section.index("</section>")]
    assert "site02_2026-11-24_bbbbbbbbbbbb" in site02_section
    assert "site01_2026-11-24" not in site02_section


def test_quality_summary_is_a_table_with_flagged_sites_named() -> None:
    html = _html()
    quality = next(t for t in _tables(html).tables if t[0][:2] == ["Site", "Night"])
    assert quality[1][:8] == [
        "site01",
        "2026-11-24",
        "aaaaaaaaaaaa",
        "quarantined",
        "clinical",
        "81",
        "80",
        "98.8",
    ]
    assert "quarantined rows or had a table rejected: site01." in html


def test_text_from_the_data_is_escaped() -> None:
    results = paper_results()
    frame = results[0].frame.copy()
    frame.loc[0, "label"] = "<script>alert(1)</script>"
    results[0] = type(results[0])(results[0].name, results[0].title, frame, results[0].notes)
    html = render_html(build_page(results, PROVENANCE, None, title="t"))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_tiny_odds_ratios_keep_two_significant_digits_but_differences_keep_two_decimals() -> None:
    from cohortpool.report.layout import effect

    assert effect(0.0042) == "0.0042"
    assert effect(0.0042, ratio=False) == "0.00"
    assert effect(11.906) == "11.91"


def test_every_id_is_unique_and_every_internal_link_resolves() -> None:
    html = _html()
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    refs = set(re.findall(r'(?:url\(#|href="#)([^")]+)', html))
    assert refs and refs <= set(ids)


def test_a_result_without_rows_is_shown_with_its_note_and_no_figure() -> None:
    from dataclasses import replace

    results = paper_results()
    index = next(i for i, r in enumerate(results) if r.kind == "detection")
    note = "no reads on XR, MR: the modalities cannot be compared"
    results[index] = replace(results[index], frame=results[index].frame.iloc[0:0], notes=(note,))
    page = render_html(build_page(release(results, 5), PROVENANCE, QUALITY, title="VCF study"))
    assert note in page
    section = page.split(results[index].title, 1)[1].split("<h2", 1)[0]
    assert "<svg" not in section
