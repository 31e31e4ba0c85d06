"""The HTML report: self-contained, deterministic, laid out like the paper's tables."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pandas as pd

from cohortpool.report.html import build_page, render_html
from cohortpool.report.provenance import Provenance, batches_by_site
from cohortpool.report.release import release
from cohortpool.stats.result import ResultTable
from report_results import analysis_sets, paper_results, table1_rows

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
    sites = next(t for t in _tables(html).tables if t[0][:3] == ["Site", "Last night", "Status"])
    assert sites[1] == [
        "site01",
        "2026-11-24",
        "on time",
        "aaaaaaaaaaaa",
        "",
        "",
        "",
        "",
        "504",
        "503",
        "1",
        "2",
        "",
    ]
    tables = next(t for t in _tables(html).tables if t[0][:3] == ["Site", "Night", "Table"])
    assert tables[1][:6] == ["site01", "2026-11-24", "clinical", "81", "80", "98.8"]
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


def _many_sites_forest(sites: int) -> ResultTable:
    """A forest frame of two outcomes over ``sites`` sites (every third site's first outcome suppressed,
    as a released frame has it) with MH and DL pooled rows."""
    rows = []
    for label in ("Male", "Osteoporosis"):
        for i in range(1, sites + 1):
            hidden = label == "Male" and i % 3 == 0
            estimate = None if hidden else 1.0 + i / 100
            low, high, weight = (None, None, None) if hidden else (0.5, 2.5, 100 / sites)
            rows.append(
                {"label": label, "site_id": f"site{i:02d}", "estimate": estimate, "ci_low": low,
                 "ci_high": high, "weight": weight, "is_pooled": False, "method": "site"}
            )  # fmt: skip
        for method in ("mantel_haenszel", "dersimonian_laird"):
            rows.append(
                {"label": label, "site_id": "ALL", "estimate": 1.1, "ci_low": 0.9, "ci_high": 1.3,
                 "weight": 100.0, "is_pooled": True, "method": method}
            )  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["measure"] = "odds_ratio"
    # the release empties a hidden row to None in an object column (pandas made them NaN above)
    frame = frame.astype(object)
    hidden = frame["estimate"].map(lambda v: v != v)
    frame.loc[hidden, ["estimate", "ci_low", "ci_high", "weight"]] = None
    return ResultTable("table1_forest", "Table 1: per-site and pooled effects", frame, kind="forest")


def test_forest_plots_list_suppressed_rows_in_a_line_instead_of_drawing_them() -> None:
    html = render_html(build_page([_many_sites_forest(6)], PROVENANCE, None, title="t"))
    section = html.split('id="table1_forest"', 1)[1]
    figure = section.split("<figure>")[1].split("</figure>")[0]
    assert "suppressed (small cells)" not in figure
    assert "Male  site03" not in figure and "Male  site01" in figure and "Osteoporosis  site03" in figure
    assert "Not drawn, small-cell suppression: site03, site06: Male." in section
    table = next(t for t in _tables(html).tables if t[0][:2] == ["Outcome", "Site"])
    assert [r[1] for r in table[1:5]] == ["Pooled", "Pooled", "site01", "site02"]  # pooled rows first
    assert not any(r[2] == "suppressed" for r in table[1:])


def test_fifty_sites_fold_each_site_and_each_outcome_with_the_pooled_rows_first() -> None:
    forest_result = _many_sites_forest(50)
    html = render_html(build_page([forest_result], PROVENANCE, None, title="t"))
    main = html.split('id="table1_forest"', 1)[1].split("<details", 1)[0]
    # the main figure and table: the four pooled rows, no site rows
    assert main.count("<svg ") == 1 and "site01" not in main
    table = next(t for t in _tables(html).tables if t[0][:2] == ["Outcome", "Site"])
    assert [r[1] for r in table[1:]] == ["Pooled"] * 4
    # each outcome's sites fold below, drawn and listed
    assert '<details id="table1_forest-1">' in html and "Male: each site (34 drawn, 16 suppressed)" in html
    assert html.count("<svg ") == 3
    assert "Not drawn, small-cell suppression: site03, site06, site09" in html


def test_many_sites_fold_their_own_sections_after_the_pooled_ones() -> None:
    frame = pd.concat(
        [table1_rows(f"site{i:02d}") for i in range(1, 13)] + [table1_rows("ALL")], ignore_index=True
    )
    result = ResultTable("table1", "Table 1", frame)
    page = build_page([result], PROVENANCE, None, title="t", collapse_sites_above=8)
    html = render_html(page)
    assert page.collapse_sites and len(page.by_site) == 12
    assert html.index('id="pooled"') < html.index('<details class="site" id="site-site01">')
    assert html.count('<details class="site"') == 12
    few = render_html(build_page([result], PROVENANCE, None, title="t", collapse_sites_above=20))
    assert '<details class="site"' not in few and '<h2 id="site-site01">' in few


def test_wide_tables_let_intervals_wrap_whole_and_numbers_never_break() -> None:
    from cohortpool.report.html import cell_html

    assert (
        str(cell_html("0.76 (0.63–0.86)", True))
        == '<span class="ci">0.76</span> <span class="ci">(0.63–0.86)</span>'
    )
    assert str(cell_html("2026-11-24", True)) == '<span class="ci">2026-11-24</span>'
    assert str(cell_html("<b>", False)) == "&lt;b&gt;"


def test_the_dictionary_link_and_the_data_quality_of_every_site() -> None:
    quality = QUALITY.assign(
        deid_input_files=120, deid_deidentified=117, deid_quarantined=3, deid_duplicates=0
    )
    late = quality.assign(site_id="site02", night="2026-11-22", batch_id="site02_2026-11-22_cccccccccccc")
    page = build_page(
        paper_results(),
        PROVENANCE,
        pd.concat([quality, late]),
        title="t",
        expected_sites=["site01", "site02", "site09"],
        dictionary="dictionary.html",
    )
    html = render_html(page)
    assert '<a href="dictionary.html">' in html
    sites = next(t for t in _tables(html).tables if t[0][:3] == ["Site", "Last night", "Status"])
    assert sites[1][:8] == ["site01", "2026-11-24", "on time", "aaaaaaaaaaaa", "120", "117", "3", "0"]
    assert sites[2][:3] == ["site02", "2026-11-22", "2 days late"]
    assert sites[3][:3] == ["site09", "", "never sent"]
    assert "Late sites (last night older than the newest, 2026-11-24): site02 (2 days)." in html
    assert "Configured sites that never sent a night: site09." in html


def test_a_missing_p_or_an_infinite_effect_says_not_estimable_and_why() -> None:
    from dataclasses import replace

    results = paper_results()
    frame = results[0].frame.copy()
    age = frame["variable"] == "age_years"
    frame.loc[age, ["p_value", "statistic", "ci_low", "ci_high"]] = float("nan")
    frame.loc[age, ["p_display", "warnings"]] = [
        "",
        "not estimable: no variation within either group (t and Levene undefined)",
    ]
    sex = frame["variable"] == "sex"
    frame.loc[sex, ["estimate", "ci_low", "ci_high"]] = [float("inf"), float("nan"), float("nan")]
    frame.loc[sex, "warnings"] = "Mantel-Haenszel OR is 0 or infinite (a zero in every stratum)"
    results[0] = replace(results[0], frame=frame)
    rows = next(t for t in _tables(render_html(build_page(results, PROVENANCE, None, title="t"))).tables)
    age_row = next(r for r in rows if r[0] == "Age years")
    assert "not estimable: no variation within either group (t and Levene undefined)" in age_row
    sex_row = next(r for r in rows if r[0] == "Sex = M")
    assert "not estimable: Mantel-Haenszel OR is 0 or infinite (a zero in every stratum)" in sex_row


def test_a_site_row_without_an_estimate_is_not_called_suppressed() -> None:
    from dataclasses import replace

    result = _many_sites_forest(6)
    frame = result.frame.copy()
    # site01's Osteoporosis has no estimate (its groups do not vary); nothing was hidden there
    at = frame.index[(frame["label"] == "Osteoporosis") & (frame["site_id"] == "site01")][0]
    frame.loc[at, ["estimate", "ci_low", "ci_high"]] = float("nan")
    html = render_html(build_page([replace(result, frame=frame)], PROVENANCE, None, title="t"))
    assert "Not drawn, small-cell suppression: site03, site06: Male." in html
    assert "Not drawn, no estimate: Osteoporosis (site01)." in html


def test_an_accuracy_metric_without_an_estimate_prints_not_estimable_and_why() -> None:
    from cohortpool.report.layout import accuracy
    from cohortpool.stats.accuracy import diagnostic_accuracy

    frame = diagnostic_accuracy(tp=5, fp=0, fn=5, tn=0).assign(sign="bone_destruction", site_id="site02")
    headers, rows = accuracy(frame)
    shown = dict(zip(headers, rows[0], strict=True))
    assert shown["Specificity"] == "not estimable: no negative units"  # was an empty cell
    assert shown["LR+"] == "not estimable: no negative units"  # was "not estimable" (an infinite LR+)
    assert shown["Sensitivity"] == "0.50 (0.24–0.76)"
    frame = diagnostic_accuracy(tp=5, fp=0, fn=5, tn=10).assign(sign="bone_destruction", site_id="site01")
    headers, rows = accuracy(frame)
    # was "not estimable"
    assert dict(zip(headers, rows[0], strict=True))["LR+"] == "infinite: no false positives"


def test_a_row_without_a_test_or_with_a_nan_effect_still_says_why() -> None:
    from cohortpool.report.layout import comparison

    frame = paper_results()[0].frame.copy().iloc[[1, 4]].reset_index(drop=True)  # two "Sex = M" rows
    # every unit in one level: no test is named, nothing to compute
    frame.loc[0, ["test", "p_display", "warnings"]] = [
        "",
        "",
        "no variation (a single level or a single group)",
    ]
    frame.loc[0, ["p_value", "estimate", "ci_low", "ci_high"]] = float("nan")
    # the test of the whole table stands, the level's odds ratio is 0/0
    frame.loc[1, ["estimate", "ci_low", "ci_high"]] = float("nan")
    frame.loc[1, "warnings"] = "odds ratio 0/0: a level nobody has"
    _, rows = comparison(frame)
    assert rows[0][3] == "not estimable: no variation (a single level or a single group)"  # was empty
    assert rows[1][3] == "< 0.001" and rows[1][5] == "not estimable: odds ratio 0/0: a level nobody has"
