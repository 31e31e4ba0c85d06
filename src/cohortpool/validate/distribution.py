"""Per-site distribution checks against the rest of the consortium: warnings, never quarantine.

A site whose patients are much older, or whose share of osteoporotic patients is far from the others', may
have a different case mix (legitimate) or a coding problem (a unit, a swapped code). Either way the
researchers must see it. Each site is compared with the pooled rows of all *other* sites (leave-one-out, so a
large site does not hide in its own average):

- numeric variables: the standardised mean difference (site mean - others' mean) / pooled SD;
- proportions: the absolute difference in the share of one category.

The variables and thresholds live in the clinical suite's ``meta.distribution`` (reviewed with the suite):
by default |SMD| > 0.5 (Cohen's "medium" effect) or a share more than 20 percentage points away.
Hand-written rather than GX's ``expect_column_mean_to_be_between``: that expectation needs the bounds before
it runs, and here the bounds are the other sites' data, known only after every site is validated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from cohortpool.validate.suites import load_suite

WARNING_COLUMNS = [
    "site_id",
    "table",
    "variable",
    "statistic",
    "site_value",
    "others_value",
    "difference",
    "threshold",
    "n_site",
    "n_others",
    "severity",
    "reason",
]


def _smd(site: pd.Series, others: pd.Series) -> tuple[float, float, float] | None:
    if len(site) < 2 or len(others) < 2:
        return None
    pooled_var = ((len(site) - 1) * site.var(ddof=1) + (len(others) - 1) * others.var(ddof=1)) / (
        len(site) + len(others) - 2
    )
    if not pooled_var or math.isnan(pooled_var):
        return None
    return (
        float(site.mean()),
        float(others.mean()),
        float((site.mean() - others.mean()) / math.sqrt(pooled_var)),
    )


def compare_sites(frames_by_site: Mapping[str, pd.DataFrame], table: str = "clinical") -> pd.DataFrame:
    """Distribution warnings of every site against the others (columns :data:`WARNING_COLUMNS`).

    Parameters
    ----------
    frames_by_site
        Site id -> that site's accepted rows of ``table`` (e.g. ``accepted/clinical.parquet`` of each
        validated batch). Sites with fewer rows than ``min_rows`` are not judged (too few to tell).
    table
        The table whose suite's ``meta.distribution`` says what to compare.
    """
    spec = load_suite(table).meta.get("distribution") or {}
    min_rows = int(spec.get("min_rows", 10))
    max_smd = float(spec.get("max_abs_smd", 0.5))
    max_diff = float(spec.get("max_abs_difference", 0.2))
    rows: list[dict[str, object]] = []
    for site_id in sorted(frames_by_site):
        site_frame = frames_by_site[site_id]
        others = [f for s, f in frames_by_site.items() if s != site_id and len(f)]
        if len(site_frame) < min_rows or not others:
            continue
        pooled = pd.concat(others, ignore_index=True)
        for variable in spec.get("numeric", []):
            site_values = pd.to_numeric(site_frame[variable], errors="coerce").dropna()
            other_values = pd.to_numeric(pooled[variable], errors="coerce").dropna()
            result = _smd(site_values, other_values)
            if result is None or abs(result[2]) <= max_smd:
                continue
            rows.append(
                {
                    "site_id": site_id,
                    "table": table,
                    "variable": variable,
                    "statistic": "standardised mean difference",
                    "site_value": round(result[0], 4),
                    "others_value": round(result[1], 4),
                    "difference": round(result[2], 4),
                    "threshold": max_smd,
                    "n_site": len(site_values),
                    "n_others": len(other_values),
                    "severity": "warning",
                    "reason": f"mean {variable} differs from the other sites by {result[2]:+.2f} pooled SD",
                }
            )
        for variable, category in spec.get("proportion", {}).items():
            site_share = float((site_frame[variable] == category).mean())
            other_share = float((pooled[variable] == category).mean())
            difference = site_share - other_share
            if abs(difference) <= max_diff:
                continue
            rows.append(
                {
                    "site_id": site_id,
                    "table": table,
                    "variable": f"{variable}={category}",
                    "statistic": "difference in proportion",
                    "site_value": round(site_share, 4),
                    "others_value": round(other_share, 4),
                    "difference": round(difference, 4),
                    "threshold": max_diff,
                    "n_site": len(site_frame),
                    "n_others": len(pooled),
                    "severity": "warning",
                    "reason": f"share of {variable}={category} differs from the other sites by "
                    f"{difference:+.0%}",
                }
            )
    return pd.DataFrame(rows, columns=WARNING_COLUMNS)
