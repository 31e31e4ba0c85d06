"""Released tables: small counts hidden as <5, consistently across site and pooled tables."""

from __future__ import annotations

import pandas as pd

from cohortpool.report.release import SECONDARY_MARK, release
from report_results import paper_results


def _by_name(results):
    return {r.name: r for r in results}


def _sex_row(frame: pd.DataFrame) -> pd.Series:
    return frame[frame["variable"] == "sex"].iloc[0]


def test_small_count_prints_as_below_threshold_and_a_site_sibling_is_hidden_too() -> None:
    tables = _by_name(release(paper_results(), threshold=5))
    site02 = _sex_row(tables["table1_site02"].frame)
    site01 = _sex_row(tables["table1_site01"].frame)
    pooled = _sex_row(tables["table1"].frame)
    assert site02["summary_OP"] == "<5"  # 3 men with OP at site02
    # pooled 9 - site01 6 would give site02's 3 back: one more cell of that line must go
    assert SECONDARY_MARK in (site01["summary_OP"], pooled["summary_OP"])
    assert site01["summary_MET"] == "22 (70.97)"  # cells in no leaking line stay


def test_rows_with_hidden_cells_lose_exact_statistics_but_keep_a_banded_p() -> None:
    tables = _by_name(release(paper_results(), threshold=5))
    row = _sex_row(tables["table1_site02"].frame)
    assert pd.isna(row["statistic"]) and pd.isna(row["p_value"]) and pd.isna(row["df"])
    assert row["p_display"] == "< 0.001"
    age = tables["table1_site02"].frame.iloc[0]
    assert age["p_value"] == 0.00086  # untouched row keeps its exact P


def test_tables_with_hidden_cells_get_the_suppression_footnote_and_others_do_not() -> None:
    tables = _by_name(release(paper_results(), threshold=5))
    assert any("Small-cell suppression" in n for n in tables["table1_site02"].notes)
    assert not any("Small-cell suppression" in n for n in tables["forest_soft_tissue_mass"].notes)


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
        sites = cells[cells["site_id"] != "pooled"]["detected"].tolist()
        pooled = cells[cells["site_id"] == "pooled"]["detected"].tolist()
        hidden = [v for v in [*sites, *pooled] if isinstance(v, str)]
        assert len(hidden) != 1, f"{finding}/{diagnosis}/{modality}: a single hidden cell is recoverable"


def test_percentage_goes_when_the_group_size_is_hidden() -> None:
    results = paper_results()
    tables = _by_name(release(results, threshold=45))  # site02's 40 OP patients become a small group
    row = _sex_row(tables["table1_site02"].frame)
    assert row["n_OP"] == "<45"
    assert "(" not in str(row["summary_OP"])  # "3 (7.50)" with n hidden would give n = 40 back
    age = tables["table1_site02"].frame.iloc[0]
    assert age["summary_OP"] == "<45"  # a mean over a small group is hidden


def test_threshold_is_configurable() -> None:
    assert _sex_row(_by_name(release(paper_results(), threshold=10))["table1"].frame)["summary_OP"] == "<10"
    assert _sex_row(_by_name(release(paper_results(), threshold=3))["table1_site02"].frame)["summary_OP"] == (
        "3 (7.50)"
    )


def test_release_leaves_the_input_tables_untouched() -> None:
    results = paper_results()
    release(results, threshold=5)
    assert _sex_row(_by_name(results)["table1_site02"].frame)["summary_OP"] == "3 (7.50)"
