"""Released tables: small counts hidden as <5, consistently across site and pooled tables."""

from __future__ import annotations

import pandas as pd

from cohortpool.report.release import SECONDARY_MARK, release
from report_results import paper_results


def _by_name(results):
    return {r.name: r for r in results}


def _sex_row(frame: pd.DataFrame, site: str) -> pd.Series:
    return frame[(frame["variable"] == "sex") & (frame["site_id"] == site)].iloc[0]


def _table1(threshold: int = 5) -> pd.DataFrame:
    return _by_name(release(paper_results(), threshold))["table1"].frame


def test_small_count_prints_as_below_threshold_and_a_site_sibling_is_hidden_too() -> None:
    table = _table1()
    site02, site01, pooled = (_sex_row(table, s) for s in ("site02", "site01", "ALL"))
    assert site02["summary_OP"] == "<5"  # 3 men with OP at site02
    # pooled 9 - site01 6 would give site02's 3 back: one more cell of that line must go
    assert SECONDARY_MARK in (site01["summary_OP"], pooled["summary_OP"])
    assert site01["summary_MET"] == "22 (70.97)"  # cells in no leaking line stay


def test_rows_with_hidden_cells_lose_exact_statistics_but_keep_a_banded_p() -> None:
    table = _table1()
    row = _sex_row(table, "site02")
    assert pd.isna(row["statistic"]) and pd.isna(row["p_value"]) and pd.isna(row["df"])
    assert row["p_display"] == "< 0.001"
    assert row["count_OP"] == "<5" and row["count_MET"] == 14  # the other group's count stays
    age = table[(table["variable"] == "age_years") & (table["site_id"] == "site02")].iloc[0]
    assert age["p_value"] == 0.00086  # untouched row keeps its exact P


def test_tables_with_hidden_cells_get_the_suppression_footnote_and_others_do_not() -> None:
    tables = _by_name(release(paper_results(), threshold=5))
    assert any("Small-cell suppression" in n for n in tables["table1"].notes)
    # the forest plot of table1 carries the same sign: its site02 odds ratio would give the count back
    forest = tables["table1_forest"]
    assert any("Small-cell suppression" in n for n in forest.notes)
    site02 = forest.frame[forest.frame["site_id"] == "site02"].iloc[0]
    assert site02["estimate"] is None and site02["ci_low"] is None
    assert forest.frame[forest.frame["site_id"] == "ALL"].iloc[0]["estimate"] == 6.9


def test_detection_rate_is_hidden_with_its_count() -> None:
    frame = _by_name(release(paper_results(), threshold=5))["table3_detection"].frame
    cell = frame[
        (frame["site_id"] == "site01")
        & (frame["finding"] == "marrow_oedema")
        & (frame["diagnosis"] == "OP")
        & (frame["modality"] == "XR")
    ].iloc[0]
    assert cell["detected"] == "<5" and cell["rate"] == "<5"
    assert cell["n"] == 98


def test_no_hidden_cell_can_be_recomputed_as_pooled_minus_other_sites() -> None:
    frame = _by_name(release(paper_results(), threshold=5))["table3_detection"].frame
    for (finding, diagnosis, modality), cells in frame.groupby(["finding", "diagnosis", "modality"]):
        sites = cells[cells["site_id"] != "ALL"]["detected"].tolist()
        pooled = cells[cells["site_id"] == "ALL"]["detected"].tolist()
        hidden = [v for v in [*sites, *pooled] if isinstance(v, str)]
        assert len(hidden) != 1, f"{finding}/{diagnosis}/{modality}: a single hidden cell is recoverable"


def test_percentage_goes_when_the_group_size_is_hidden() -> None:
    table = _table1(threshold=21)  # site02's 20 MET patients become a small group
    site02 = _sex_row(table, "site02")
    assert site02["n_MET"] == "<21"
    age = table[(table["variable"] == "age_years") & (table["site_id"] == "site02")].iloc[0]
    assert age["summary_MET"] == "<21"  # a mean over a small group is hidden
    # pooled 51 - 20 would give the hidden n back, so site01's 31 goes too
    assert _sex_row(table, "site01")["n_MET"] == "*"
    # and wherever n is hidden, no percentage is left to give it back
    for _, row in table.iterrows():
        for group in ("OP", "MET"):
            if isinstance(row[f"n_{group}"], str):
                assert "(" not in str(row[f"summary_{group}"]), row


def test_threshold_is_configurable() -> None:
    assert _sex_row(_table1(threshold=10), "ALL")["summary_OP"] == "<10"
    assert _sex_row(_table1(threshold=3), "site02")["summary_OP"] == "3 (7.50)"


def test_release_leaves_the_input_tables_untouched() -> None:
    results = paper_results()
    release(results, threshold=5)
    assert _sex_row(_by_name(results)["table1"].frame, "site02")["summary_OP"] == "3 (7.50)"


def test_count_stays_without_its_percentage_when_only_the_group_size_is_hidden() -> None:
    from cohortpool.stats.result import ResultTable

    rows = [
        {
            "analysis": "t",
            "unit": "patient",
            "site_id": site,
            "variable": "sex",
            "label": "Male",
            "level": "M",
            "n_MET": n,
            "count_MET": float(k),
            "summary_MET": f"{k} ({100 * k / n:.2f})",
            "test": "fisher_exact",
            "statistic": None,
            "df": None,
            "p_value": 0.3,
            "p_display": "0.300",
            "warnings": "",
        }
        for site, n, k in (("s1", 31, 22), ("s2", 3, 0), ("ALL", 34, 22))
    ]
    frame = release([ResultTable("t", "T", pd.DataFrame(rows))], threshold=5)[0].frame.set_index("site_id")
    assert frame.loc["s2", "n_MET"] == "<5" and frame.loc["s2", "summary_MET"] == "0"
    # 34 - 3 = 31: site s1's group size goes too (the pooled one is kept), its count stays bare
    assert frame.loc["s1", "n_MET"] == "*" and frame.loc["s1", "summary_MET"] == "22"
    assert frame.loc["ALL", "n_MET"] == 34 and frame.loc["ALL", "summary_MET"] == "22 (64.71)"


def test_rows_with_hidden_cells_lose_their_warnings_which_could_give_a_count_back() -> None:
    results = paper_results()
    frame = results[0].frame.copy()
    site02 = (frame["site_id"] == "site02") & (frame["variable"] == "sex")
    # a warning that says how small a group is: beside "<5" it would read as "1"
    frame.loc[site02, "warnings"] = "fewer than 2 values in a group: no test"
    results[0] = type(results[0])(results[0].name, results[0].title, frame, results[0].notes)
    row = _sex_row(_by_name(release(results, 5))["table1"].frame, "site02")
    assert row["summary_OP"] == "<5" and row["warnings"] == ""
