"""`cohortpool report` end to end on a real warehouse, and the report opened in headless Chromium.

The warehouse is a real DuckDB file filled by `cohortpool load` (with each night's submission, so the
site's de-identification counts are recorded) from validated batches of three sites: one small, so
suppression has work to do and its logistic model is separated, one a night behind. The report is
written by the real CLI from the published copy, and Chromium must render it: tables that fit the page,
forest plots without suppressed rows, the data-quality section. Screenshots of the page and of the
parts the tests look at are saved in the test's temporary folder (``report_shots/``) for a person to
look at. (Byte-identity of two runs is proved on the demo consortium, tests/e2e/test_report_demo.py.)
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from openpyxl import load_workbook

from warehouse_batches import make_tables, write_batch

pytestmark = pytest.mark.integration

SITES = (("site01", 40), ("site02", 24), ("site03", 9))
NIGHTS = {"site01": "2026-11-24", "site02": "2026-11-24", "site03": "2026-11-22"}


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (Debian package `chromium`; .ci/run installs it)")


def _run_report(db: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cohortpool", "report", "--db", str(db), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _submission(folder: Path, site: str, night: str, files: int, quarantined: int) -> Path:
    folder.mkdir(parents=True)
    counts = {
        "input_files": files,
        "deidentified": files - quarantined,
        "quarantined": quarantined,
        "duplicate": 0,
    }
    document = {"site_id": site, "night": night, "counts": counts, "files": {}}
    (folder / "submission.json").write_text(json.dumps(document), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published copy of a warehouse loaded (and published) by `cohortpool load`."""
    root = tmp_path_factory.mktemp("report_wh")
    db = root / "warehouse.duckdb"
    arguments: list[str] = []
    for i, (site, n) in enumerate(SITES):
        quarantine = (
            [
                {
                    "table": "clinical",
                    "source_row": 7,
                    "key": "P",
                    "expectation": "expect_column_values_to_be_between",
                    "severity": "error",
                    "reason": "bmi out of range",
                    "value": "99",
                }
            ]
            if site == "site02"
            else None
        )
        night = NIGHTS[site]
        batch = write_batch(root / site, site, night, make_tables(site, n, seed=i), quarantine=quarantine)
        submission = _submission(
            root / f"submission_{site}", site, night, 20 * n, 2 if site == "site02" else 0
        )
        arguments += [str(batch), "--submission", str(submission)]
    loaded = subprocess.run(
        [sys.executable, "-m", "cohortpool", "load", *arguments, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert loaded.returncode == 1, loaded.stderr  # site02's batch has a quarantined row
    published = root / "published" / "warehouse.duckdb"
    assert f"published {published}" in loaded.stdout
    return published


@pytest.fixture(scope="module")
def report(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    result = _run_report(warehouse, out)
    assert result.returncode == 0, result.stderr
    return out


def test_report_writes_html_tables_workbook_and_spss_sets(report: Path) -> None:
    assert (report / "report.html").stat().st_size > 10_000
    csvs = sorted(p.name for p in (report / "tables").glob("*.csv"))
    assert {"table1.csv", "table2.csv", "table3_rates.csv", "accuracy.csv"} <= set(csvs)
    book = load_workbook(report / "tables.xlsx")
    assert book.sheetnames[0] == "About" and "table1" in book.sheetnames
    data, meta = pyreadstat.read_sav(str(report / "internal" / "analysis_sets" / "patients.sav"))
    assert len(data) == sum(n for _, n in SITES)
    assert meta.variable_value_labels["diagnosis"] == {1.0: "OP", 2.0: "MET"}
    assert "INTERNAL" in (report / "internal" / "README.txt").read_text()


def test_released_tables_hide_small_counts_of_the_small_site(report: Path) -> None:
    table1 = pd.read_csv(report / "tables" / "table1.csv", dtype=str, keep_default_na=False)
    site03 = table1[table1["site_id"] == "site03"]
    # site03 has 9 patients, 3 with metastases: its MET group size is a small cell
    assert set(site03["n_MET"]) == {"<5"}
    internal = pd.read_csv(report / "internal" / "tables" / "table1.csv", dtype=str, keep_default_na=False)
    assert set(internal[internal["site_id"] == "site03"]["n_MET"]) == {"3"}
    for frame in (table1,):
        for column in [c for c in frame.columns if c.startswith(("n_", "count_"))]:
            for value in frame[column]:
                if value and value not in ("<5", "*"):
                    assert not 1 <= float(value) < 5, f"{column}={value} shown in a released table"


def test_report_provenance_names_warehouse_checksum_plan_and_batches(warehouse: Path, report: Path) -> None:
    from cohortpool.warehouse import checksum

    html = (report / "report.html").read_text(encoding="utf-8")
    assert checksum(warehouse) in html
    plan = Path(__file__).resolve().parents[2] / "plans" / "vcf_study.yaml"
    assert hashlib.sha256(plan.read_bytes()).hexdigest() in html
    for site, _ in SITES:
        assert f"{site}_{NIGHTS[site]}_" in html


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _chrome_args(profile: Path) -> list[str]:
    return [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]


def test_report_renders_in_chromium_with_tables_and_svg_figures(report: Path, tmp_path: Path) -> None:
    url = (report / "report.html").resolve().as_uri()
    dumped = subprocess.run(
        [*_chrome_args(tmp_path / "profile"), "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    dom = _Dom()
    dom.feed(dumped)
    assert dom.counts.get("table", 0) >= 10
    assert dom.counts.get("svg", 0) >= 3  # two forest plots and the detection chart
    assert dom.counts.get("script", 0) == 0
    text = " ".join(dom.text)
    assert "Table 1" in text and "Provenance" in text and "Data quality" in text
    shot = tmp_path / "report.png"
    subprocess.run(
        [*_chrome_args(tmp_path / "profile2"), "--window-size=1100,2400", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one


# Injected into a copy of the report (the report itself has no script): measures, after layout, every
# table against the width it is given and writes what overflows into the page for --dump-dom to return.
MEASURE = """<script>
const wide = [...document.querySelectorAll('.tablewrap')]
  .filter(w => w.scrollWidth > w.clientWidth + 1)
  .map(w => (w.closest('section') || {}).id + ' ' + w.scrollWidth + '>' + w.clientWidth);
const out = document.createElement('pre');
out.id = 'measured';
out.textContent = JSON.stringify({wide: wide, tables: document.querySelectorAll('.tablewrap').length});
document.body.appendChild(out);
</script>"""


def _measured(report: Path, tmp_path: Path, width: int) -> dict[str, object]:
    page = tmp_path / f"measure_{width}.html"
    html = (report / "report.html").read_text(encoding="utf-8")
    page.write_text(html.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dumped = subprocess.run(
        [
            *_chrome_args(tmp_path / f"profile-m{width}"),
            f"--window-size={width},1200",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = re.search(r'<pre id="measured">(.*?)</pre>', dumped, re.DOTALL)
    assert found, "the measuring script did not run"
    return dict(json.loads(found.group(1).replace("&gt;", ">")))


def _shoot(html: Path, png: Path, profile: Path, height: int) -> None:
    subprocess.run(
        [
            *_chrome_args(profile),
            "--hide-scrollbars",
            f"--window-size=1100,{height}",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    assert png.stat().st_size > 20_000, f"{png} looks blank"


def _part(report: Path, start: str, end: str, out: Path) -> Path:
    """The page's head and the part between two markers, every <details> opened, as its own file."""
    html = (report / "report.html").read_text(encoding="utf-8")
    head = html.split("<body>", 1)[0]
    body = html[html.index(start) : html.index(end, html.index(start) + 1)].replace(
        "<details", "<details open"
    )
    out.write_text(f"{head}<body>{body}</body></html>", encoding="utf-8")
    return out


def test_wide_tables_fit_the_page_in_chromium(report: Path, tmp_path: Path) -> None:
    measured = _measured(report, tmp_path, 1100)
    assert int(str(measured["tables"])) >= 10
    # the accuracy table's LR- and accuracy columns used to sit behind a scrollbar
    assert measured["wide"] == [], f"tables wider than the page: {measured['wide']}"


def test_report_parts_render_and_are_saved_as_screenshots(report: Path, tmp_path: Path) -> None:
    """Screenshots for a person to look at (tmp_path/report_shots), and checks of what they show."""
    shots = tmp_path / "report_shots"
    shots.mkdir()
    _shoot(report / "report.html", shots / "page.png", tmp_path / "p0", 6000)
    parts = {
        "accuracy": ('<section id="accuracy"', '<section id="accuracy_model"'),
        "table2_forest": ('<section id="table2_forest"', '<section id="table3_rates"'),
        "quality": ('<h2 id="quality">', '<h2 id="provenance">'),
        "site03_coefficients": ('<section id="accuracy_model_coefficients-site03"', "</section>"),
    }
    for name, (start, end) in parts.items():
        _shoot(
            _part(report, start, end, tmp_path / f"{name}.html"),
            shots / f"{name}.png",
            tmp_path / f"p-{name}",
            2400,
        )
    html = (report / "report.html").read_text(encoding="utf-8")
    forest = html.split('<section id="table2_forest"', 1)[1].split("</section>", 1)[0]
    assert "suppressed (small cells)" not in forest
    assert "Not drawn, small-cell suppression: site02: every outcome but Height loss, %; site03: " in forest
    # nobody at site03 has Genant grade "none": no estimate, which is not small-cell suppression
    assert "Not drawn, no estimate: Genant grade (height loss): none (site03, " in forest
    coefficients = html.split('<section id="accuracy_model_coefficients-site03"', 1)[1].split(
        "</section>", 1
    )[0]
    assert "not estimable: separation" in coefficients
    quality = html.split('<h2 id="quality">', 1)[1]
    assert "Quarantined at the site" in quality and "2 days late" in quality
    assert '<a href="dictionary.html">' in html and (report / "dictionary.html").is_file()


def test_workbook_is_the_reports_layout_and_spss_lists_the_reference_group_first(report: Path) -> None:
    book = load_workbook(report / "tables.xlsx")
    sheet = book["accuracy"]
    assert sheet.freeze_panes == "B3"
    assert [c.value for c in sheet[2]][:3] == ["Site", "Sign", "TP"]
    assert "LR−" in [c.value for c in sheet[2]]
    _, meta = pyreadstat.read_sav(str(report / "internal" / "analysis_sets" / "patients.sav"))
    assert meta.variable_value_labels["diagnosis"] == {1.0: "OP", 2.0: "MET"}
