"""The data-quality summary: how each site's last night went, from its hospital to the warehouse.

Input is one row per (batch, table) of the last night of each site, as the report SQL selects it from the
warehouse's batch and validation-summary tables, with the site's de-identification counts where the load
recorded them. This module shapes it for reading: one row per site (files held back at the site, rows
quarantined at the hub, how many nights behind the newest it is, or that it never sent), and the
per-table validation counts. Row and file counts here are counts of submitted rows and files, not of
people with an attribute, so they are not small-cell suppressed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from datetime import date

import pandas as pd

from cohortpool.report.page import Detail, Section, numeric_columns

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
#: the site's de-identification counts of the night (submission.json), when the load was given them
DEID_COLUMNS = ("deid_input_files", "deid_deidentified", "deid_quarantined", "deid_duplicates")
#: what the site's release was held to (submission.json privacy), when the load recorded it
RELEASE_COLUMNS = ("release_k_anonymity", "release_generalisations")
TABLE_ORDER = ("clinical", "reads", "imaging_manifest")
#: sites whose per-table validation rows are shown open; with more they fold into a <details> block
OPEN_TABLE_ROWS_UP_TO = 8


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
    deid = [c for c in DEID_COLUMNS if c in summary.columns]
    release = [c for c in RELEASE_COLUMNS if c in summary.columns]
    frame = summary.loc[:, [*QUALITY_COLUMNS, *deid, *release]].copy()
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
    for column in [*deid, *[c for c in release if c == "release_k_anonymity"]]:
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    if "release_generalisations" in frame:
        frame["release_generalisations"] = frame["release_generalisations"].map(
            lambda v: "" if pd.isna(v) else str(v)
        )
    # why validation refused a whole table (summary.json "rejected"); empty when the table was read
    frame["rejected_reason"] = frame["rejected_reason"].map(lambda v: "" if pd.isna(v) else str(v))
    return frame


def flagged_sites(quality: pd.DataFrame) -> list[str]:
    """Sites whose last night quarantined rows or had a whole table rejected."""
    bad = quality[(quality["quarantined"] > 0) | (quality["rejected_reason"] != "")]
    return sorted(set(bad["site_id"].astype(str)))


def _count(value: object) -> str:
    """A count as printed; empty when unknown (NA, NaN, None)."""
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, float) and not math.isnan(value):
        return str(int(value))
    return ""


def site_summary(quality: pd.DataFrame, expected_sites: Iterable[str] = ()) -> pd.DataFrame:
    """One row per site: its last night, how many days that is behind the newest night any site sent,
    the night's batch(es), de-identification counts, validation totals and rejected tables; a site in
    ``expected_sites`` with nothing in the warehouse gets a row saying it never sent."""
    newest = max((date.fromisoformat(n) for n in quality["night"]), default=None)
    rows = []
    for site, part in quality.groupby("site_id", sort=True):
        night = str(part["night"].iloc[0])
        per_batch = part.drop_duplicates("batch_id")
        deid = {c: per_batch[c].sum(min_count=1) if c in part else pd.NA for c in DEID_COLUMNS}
        # several batches of one night (a corrected resubmission): the smallest k, each generalisation once
        k = per_batch["release_k_anonymity"].min() if "release_k_anonymity" in part else pd.NA
        said: Iterable[object] = part.get("release_generalisations", [])
        generalised = "; ".join(sorted({str(g) for g in said if str(g)}))
        behind = (newest - date.fromisoformat(night)).days if newest else 0
        rejected = sorted(set(part.loc[part["rejected_reason"] != "", "table_name"].astype(str)))
        rows.append(
            {
                "site_id": str(site),
                "night": night,
                "days_behind": behind,
                "status": "on time" if behind == 0 else f"{behind} day{'s' * (behind != 1)} late",
                # the batch id is <site>_<night>_<12 hex>: the first two are in their own columns already
                "batches": ", ".join(str(b).rsplit("_", 1)[-1] for b in per_batch["batch_id"]),
                **deid,
                "release_k_anonymity": k,
                "release_generalisations": generalised,
                "rows_in": int(part["rows_in"].sum()),
                "accepted": int(part["accepted"].sum()),
                "quarantined": int(part["quarantined"].sum()),
                "warnings": int(part["warnings"].sum()),
                "rejected_tables": ", ".join(t.replace("_", " ") for t in rejected),
            }
        )
    for site in sorted(set(expected_sites) - set(quality["site_id"].astype(str))):
        rows.append({"site_id": site, "night": "", "days_behind": pd.NA, "status": "never sent"})
    columns = ["site_id", "night", "days_behind", "status", "batches", *DEID_COLUMNS, *RELEASE_COLUMNS,
               "rows_in", "accepted", "quarantined", "warnings", "rejected_tables"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).sort_values("site_id", kind="stable").reset_index(drop=True)


def _site_section(sites: pd.DataFrame, quality: pd.DataFrame) -> Section:
    headers = [
        "Site",
        "Last night",
        "Status",
        "Batch",
        "Files in",
        "De-identified",
        "Quarantined at the site",
        "Duplicates",
        "Rows in",
        "Accepted",
        "Quarantined at the hub",
        "Warnings",
        "Tables rejected",
    ]
    rows = [
        [
            str(r["site_id"]),
            str(r["night"]),
            str(r["status"]),
            "" if pd.isna(r["batches"]) else str(r["batches"]),
            *[_count(r[c]) for c in DEID_COLUMNS],
            *[_count(r[c]) for c in ("rows_in", "accepted", "quarantined", "warnings")],
            "" if pd.isna(r["rejected_tables"]) else str(r["rejected_tables"]),
        ]
        for _, r in sites.iterrows()
    ]
    flagged = flagged_sites(quality)
    late = sites[sites["status"].str.endswith("late")]
    never = sites[sites["status"] == "never sent"]
    newest = max(quality["night"], default="")
    notes = [
        "Sites whose last night quarantined rows or had a table rejected: "
        + (", ".join(flagged) if flagged else "none")
        + ".",
        f"Late sites (last night older than the newest, {newest}): "
        + (
            ", ".join(f"{s} ({d} days)" for s, d in zip(late["site_id"], late["days_behind"], strict=True))
            or "none"
        )
        + ".",
    ]
    if len(never):
        notes.append("Configured sites that never sent a night: " + ", ".join(never["site_id"]) + ".")
    # in a note, not columns: the table must fit the page
    released = []
    for _, r in sites.iterrows():
        k = _count(r["release_k_anonymity"])
        said = r["release_generalisations"]
        generalised = said if isinstance(said, str) and said else ""
        if k or generalised:
            released.append(
                f"{r['site_id']} k {k or 'not given'}, generalisations: {generalised or 'not given'}"
            )
    if released:
        notes.append(
            "What each site's last night was released under (submission.json privacy): "
            + "; ".join(released)
            + "."
        )
    notes += [
        "Files in, de-identified, quarantined at the site (held in its vault with the reason) and duplicates "
        "are the site's de-identification counts of DICOM files (submission.json); empty where the load was "
        "not given the submission. Rows: the three tables together, as validation counted them at the hub.",
        "Counts of submitted files and rows, not of patients with an attribute: not small-cell suppressed.",
    ]
    return Section(
        "data-quality",
        "Data quality of the last night per site",
        "quality",
        headers,
        rows,
        notes=tuple(notes),
        numeric=numeric_columns(rows, len(headers)),
    )


def _table_rows(quality: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    headers = [
        "Site",
        "Night",
        "Table",
        "Rows in",
        "Accepted",
        "Accepted %",
        "Quarantined",
        "Warnings",
        "Table rejected",
    ]
    rows = [
        [
            str(r.site_id),
            str(r.night),
            str(r.table_name).replace("_", " "),
            str(r.rows_in),
            str(r.accepted),
            str(r.accepted_pct),
            str(r.quarantined),
            str(r.warnings),
            str(r.rejected_reason),
        ]
        for r in quality.itertuples(index=False)
    ]
    return headers, rows


def quality_sections(quality: pd.DataFrame, expected_sites: Iterable[str] = ()) -> list[Section]:
    """The data-quality part of the page: a row per site, then validation per table (folded when the
    consortium has more than :data:`OPEN_TABLE_ROWS_UP_TO` sites)."""
    sites = site_summary(quality, expected_sites)
    headers, rows = _table_rows(quality)
    by_table = Section(
        "data-quality-tables",
        "Validation of the last night, by table",
        "quality",
        headers,
        rows,
        numeric=numeric_columns(rows, len(headers)),
    )
    if quality["site_id"].nunique() > OPEN_TABLE_ROWS_UP_TO:
        detail = Detail("data-quality-tables-all", f"Every site's tables ({len(rows)} rows)", headers, rows,
                        by_table.numeric)  # fmt: skip
        by_table = Section("data-quality-tables", by_table.title, "quality", [], [], details=[detail])
    return [_site_section(sites, quality), by_table]
