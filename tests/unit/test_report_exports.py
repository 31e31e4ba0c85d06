"""CSV, XLSX and SPSS exports: formula-safe, byte-identical on a second write, readable back."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from openpyxl import load_workbook

from cohortpool.contract.csvio import formula_safe as escape_formula
from cohortpool.report.exports import write_csv, write_csvs, write_sav, write_xlsx
from cohortpool.stats.result import ResultTable
from report_results import analysis_sets, paper_results


@pytest.mark.parametrize("text", ['=HYPERLINK("x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_text_a_spreadsheet_would_run_is_escaped(text: str) -> None:
    assert escape_formula(text) == "'" + text


@pytest.mark.parametrize("value", ["-1.25", "+3", "plain", "< 0.001", 5, -2.0, None])
def test_numbers_and_plain_text_are_left_alone(value: object) -> None:
    assert escape_formula(value) == value


def test_csv_cells_from_a_site_cannot_become_formulas(tmp_path: Path) -> None:
    frame = pd.DataFrame({"primary_tumour": ["=cmd|' /C calc'!A0", "lung"], "x": [-1.5, float("nan")]})
    rows = list(csv.reader(write_csv(frame, tmp_path / "t.csv").open(encoding="utf-8")))
    assert rows == [["primary_tumour", "x"], ["'=cmd|' /C calc'!A0", "-1.5"], ["lung", ""]]


def test_csv_export_writes_one_file_per_table_named_for_it(tmp_path: Path) -> None:
    paths = write_csvs(paper_results(), tmp_path)
    assert [p.name for p in paths] == [f"{r.name}.csv" for r in paper_results()]
    table1 = pd.read_csv(paths[0])
    assert table1.loc[table1["variable"] == "bmi", "p_display"].iloc[0] == "0.468"


def test_xlsx_is_byte_identical_when_written_again_later(tmp_path: Path) -> None:
    first = write_xlsx(paper_results(), tmp_path / "a.xlsx", [("plan", "vcf_study")]).read_bytes()
    time.sleep(2.1)  # zip times have 2 s resolution; core.xml has seconds
    second = write_xlsx(paper_results(), tmp_path / "b.xlsx", [("plan", "vcf_study")]).read_bytes()
    assert first == second


def test_xlsx_has_about_sheet_one_sheet_per_table_and_formula_text_stays_text(tmp_path: Path) -> None:
    evil = ResultTable("x" * 40, "Evil", pd.DataFrame({"note": ["=1+1"], "n": [3]}))
    book = load_workbook(write_xlsx([*paper_results(), evil], tmp_path / "t.xlsx", [("plan", "vcf")]))
    assert book.sheetnames[0] == "About"
    assert "table1_forest" in book.sheetnames
    assert book["About"]["B1"].value == "vcf"
    sheet = book["x" * 31]
    assert sheet["A1"].value == "Evil"
    assert sheet["A3"].value == "=1+1" and sheet["A3"].data_type == "s"
    assert sheet["B3"].value == 3


def test_sav_has_value_labels_and_is_byte_identical_later(tmp_path: Path) -> None:
    patients = analysis_sets()["patients"]
    first = write_sav(patients, tmp_path / "a.sav", "patients").read_bytes()
    time.sleep(1.1)  # the .sav header holds the time to the second
    second = write_sav(patients, tmp_path / "b.sav", "patients").read_bytes()
    assert first == second
    data, meta = pyreadstat.read_sav(str(tmp_path / "a.sav"))
    assert meta.variable_value_labels["diagnosis"] == {1.0: "MET", 2.0: "OP"}
    assert meta.variable_value_labels["osteoporosis"] == {0.0: "no", 1.0: "yes"}
    assert meta.column_names_to_labels["bmi"] == "BMI, kg/m2"
    assert list(data["diagnosis"]) == [2.0, 1.0, 2.0]
    assert list(data["osteoporosis"]) == [1.0, 0.0, 1.0]
    assert data["patient_id"].iloc[0] == "P0123456789ABCDEF"  # identifiers stay text
    assert pd.isna(data["bmi"].iloc[1])  # missing stays missing (SPSS system-missing)
    assert meta.file_label == "patients"


def test_xlsx_sheets_are_the_reports_tables_with_frozen_headers_and_widths(tmp_path: Path) -> None:
    book = load_workbook(write_xlsx(paper_results(), tmp_path / "t.xlsx", [("plan", "vcf")]))
    sheet = book["table1"]
    assert sheet["A1"].value == "Table 1. General data"
    header = [c.value for c in sheet[2]]
    # the paper's layout, not the frame's 37 columns: Site, Variable, the groups, P, Test, ...
    assert header[:6] == ["Site", "Variable", "OP", "MET", "P", "Test"]
    assert sheet.freeze_panes == "B3"  # header rows and the site column stay in view
    first = [c.value for c in sheet[3]]
    assert first[:3] == ["All sites", "Age years", "69.58 ± 8.46 [n = 90]"]  # pooled rows first
    sites = [row[0].value for row in sheet.iter_rows(min_row=3) if row[0].value]
    assert sites.index("All sites") == 0 and "site01" in sites and "site02" in sites
    p_cell = next(row[4] for row in sheet.iter_rows(min_row=3) if row[1].value == "Bmi")
    assert p_cell.value == 0.468 and p_cell.number_format == "0.000"  # a number, printed as in the report
    assert sheet.column_dimensions["B"].width >= len("Age years") + 2
    assert sheet.column_dimensions["C"].width >= len("69.58 ± 8.46 [n = 90]")


def test_sav_codes_levels_in_the_plans_order(tmp_path: Path) -> None:
    patients = analysis_sets()["patients"]
    write_sav(patients, tmp_path / "p.sav", "patients", {"diagnosis": ("OP", "MET")})
    data, meta = pyreadstat.read_sav(str(tmp_path / "p.sav"))
    assert meta.variable_value_labels["diagnosis"] == {1.0: "OP", 2.0: "MET"}  # reference group first
    assert list(data["diagnosis"]) == [1.0, 2.0, 1.0]
