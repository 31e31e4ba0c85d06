"""`cohortpool report` end to end on a real warehouse, and the report opened in headless Chromium.

The warehouse is a real DuckDB file filled by the warehouse stage's own loader from validated batches of
three sites (one of them small, so suppression has work to do); the report is written by the real CLI in
a subprocess and Chromium must render its tables and figures. (Byte-identity of two runs is proved on the
demo consortium, tests/e2e/test_report_demo.py: the flow's report and the CLI's are the same bytes.)
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from openpyxl import load_workbook

from cohortpool.warehouse import load_batch
from warehouse_batches import make_tables, write_batch

pytestmark = pytest.mark.integration

SITES = (("site01", 40), ("site02", 24), ("site03", 9))


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


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report_wh")
    db = root / "warehouse.duckdb"
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
        batch = write_batch(
            root / site, site, "2026-11-24", make_tables(site, n, seed=i), quarantine=quarantine
        )
        assert load_batch(db, batch).status == "loaded"
    return db


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
    assert set(meta.variable_value_labels["diagnosis"].values()) == {"MET", "OP"}
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
        assert f"{site}_2026-11-24_" in html


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
