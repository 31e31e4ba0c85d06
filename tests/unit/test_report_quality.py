"""The data-quality summary: ordered, with the share of rows accepted, and strict about its input."""

from __future__ import annotations

import pandas as pd
import pytest

from cohortpool.report.quality import QUALITY_COLUMNS, flagged_sites, quality_table


def _summary() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("site02", "2026-11-24", "site02_b", "passed", "reads", 100, 100, 0, 0, None),
            ("site01", "2026-11-24", "site01_a", "quarantined", "reads", 200, 198, 2, 1, None),
            ("site01", "2026-11-24", "site01_a", "quarantined", "clinical", 50, 50, 0, 0, None),
            ("site03", "2026-11-24", "site03_c", "quarantined", "clinical", 0, 0, 0, 0, "no such file"),
        ],
        columns=list(QUALITY_COLUMNS),
    )


def test_rows_are_ordered_by_site_then_table_in_pipeline_order() -> None:
    table = quality_table(_summary())
    assert list(zip(table["site_id"], table["table_name"], strict=True)) == [
        ("site01", "clinical"),
        ("site01", "reads"),
        ("site02", "reads"),
        ("site03", "clinical"),
    ]


def test_accepted_share_is_a_percentage_and_blank_for_empty_tables() -> None:
    table = quality_table(_summary())
    assert table["accepted_pct"].tolist() == ["100.0", "99.0", "100.0", ""]


def test_sites_with_quarantined_rows_or_a_rejected_table_are_flagged() -> None:
    table = quality_table(_summary())
    assert flagged_sites(table) == ["site01", "site03"]
    assert table["rejected_reason"].tolist() == ["", "", "", "no such file"]


def test_missing_column_names_what_is_expected() -> None:
    with pytest.raises(ValueError, match="lacks columns \\['rejected_reason'\\]"):
        quality_table(_summary().drop(columns="rejected_reason"))


def test_site_summary_adds_up_the_night_says_who_is_late_and_who_never_sent() -> None:
    from cohortpool.report.quality import site_summary

    summary = _summary()
    summary.loc[summary["site_id"] == "site02", "night"] = "2026-11-21"
    summary["deid_input_files"] = [30, 120, 120, None]
    summary["deid_quarantined"] = [0, 3, 3, None]
    summary["release_k_anonymity"] = [5, 3, 3, None]
    summary["release_generalisations"] = ["none", "age in 5-year bands", "age in 5-year bands", None]
    sites = site_summary(quality_table(summary), expected_sites=["site01", "site02", "site03", "site04"])
    by_site = sites.set_index("site_id")
    assert list(sites["site_id"]) == ["site01", "site02", "site03", "site04"]
    # one batch a night: its de-identification counts once, not once per table
    assert by_site.loc["site01", "deid_input_files"] == 120 and by_site.loc["site01", "deid_quarantined"] == 3
    assert (by_site.loc["site01", "rows_in"], by_site.loc["site01", "quarantined"]) == (250, 2)
    assert by_site.loc["site01", "release_k_anonymity"] == 3  # what the night was released under, once
    assert by_site.loc["site01", "release_generalisations"] == "age in 5-year bands"
    assert by_site.loc["site02", "status"] == "3 days late"
    assert by_site.loc["site03", "rejected_tables"] == "clinical"
    assert pd.isna(by_site.loc["site03", "deid_input_files"])  # not given: unknown, not zero
    assert by_site.loc["site04", "status"] == "never sent"
