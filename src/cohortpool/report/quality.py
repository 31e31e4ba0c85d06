"""The data-quality summary: how each site's last night went through validation and loading.

Input is one row per (batch, table) of the last night of each site, as the report SQL selects it from the
warehouse's batch and validation-summary tables; this module only shapes it for reading. Row counts here
are counts of submitted rows, not of people with an attribute, so they are not small-cell suppressed.
"""

from __future__ import annotations

import pandas as pd

#: the columns the summary query returns (sql/report/quality_last_night.sql)
QUALITY_COLUMNS = (
    "site_id",
    "night",
    "batch_id",
    "validation_outcome",
    "table_name",
    "rows_in",
    "accepted",
    "quarantined",
    "warnings",
    "rejected_reason",
)
TABLE_ORDER = ("clinical", "reads", "imaging_manifest")


def quality_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per site, night and table, with the share of rows accepted, in a stable order.

    Raises
    ------
    ValueError
        If the summary lacks a column of :data:`QUALITY_COLUMNS` (the SQL and this module disagree).
    """
    missing = [c for c in QUALITY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"data-quality summary lacks columns {missing}; expected {list(QUALITY_COLUMNS)}")
    frame = summary.loc[:, list(QUALITY_COLUMNS)].copy()
    frame["night"] = frame["night"].astype(str)
    order = {name: i for i, name in enumerate(TABLE_ORDER)}
    frame["_order"] = frame["table_name"].map(order).fillna(len(order))
    frame = frame.sort_values(["site_id", "night", "batch_id", "_order", "table_name"], kind="stable")
    frame = frame.drop(columns="_order").reset_index(drop=True)
    rows_in = pd.to_numeric(frame["rows_in"])
    accepted = pd.to_numeric(frame["accepted"])
    share = (100.0 * accepted / rows_in.where(rows_in > 0)).round(1)
    frame["accepted_pct"] = share.map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    for column in ("rows_in", "accepted", "quarantined", "warnings"):
        frame[column] = pd.to_numeric(frame[column]).astype("int64")
    # why validation refused a whole table (summary.json "rejected"); empty when the table was read
    frame["rejected_reason"] = frame["rejected_reason"].map(lambda v: "" if pd.isna(v) else str(v))
    return frame


def flagged_sites(quality: pd.DataFrame) -> list[str]:
    """Sites whose last night quarantined rows or had a whole table rejected."""
    bad = quality[(quality["quarantined"] > 0) | (quality["rejected_reason"] != "")]
    return sorted(set(bad["site_id"].astype(str)))
