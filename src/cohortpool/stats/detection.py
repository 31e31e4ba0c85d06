"""Detection by modality (the paper's Table 3): rates, the paper's independent-samples test, the paired tests.

The unit (a vertebra) is read on every modality, so the right comparison is paired: Cochran's Q across
modalities, then pairwise McNemar with Holm's correction. The paper's chi-square across modality rows (as
if independent samples) is reported too, labelled as such, so its P values can be reproduced and contrasted.
The combined row ("ALL") is "seen on any modality".

Input is either the read-level view (one row per unit and modality, findings as columns) or pattern counts
already aggregated by the warehouse (``detection_patterns``: site, group, finding, one boolean column per
modality, and the weight column).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from cohortpool.stats import format as fmt
from cohortpool.stats import paired
from cohortpool.stats.categorical import compare_categorical
from cohortpool.stats.frames import sites_of
from cohortpool.stats.plan import Detection, Plan


def detection_patterns(plan: Plan, spec: Detection, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Pattern counts per site, group and finding; units lacking a modality's read are left out (noted)."""
    mods, gcol, wcol = list(spec.modalities), plan.groups.column, plan.weight_column
    if {"finding", wcol, *mods} <= set(frame.columns):
        return frame[frame["finding"].isin(spec.findings)], []
    need = [*spec.unit_keys, gcol, spec.modality_column, *spec.findings]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise KeyError(f"detection {spec.name!r}: view {spec.view!r} lacks columns {missing}")
    keys = list(dict.fromkeys([plan.site_column, *spec.unit_keys, gcol]))
    sub = frame.loc[frame[spec.modality_column].isin(mods), [*keys, spec.modality_column, *spec.findings]]
    per_read = sub.groupby([*keys, spec.modality_column], observed=True)[list(spec.findings)].max()
    wide = pd.DataFrame(per_read.unstack(spec.modality_column))
    notes: list[str] = []
    unread = [m for m in mods if m not in set(wide.columns.get_level_values(-1))]
    read = [m for m in mods if m not in unread]
    if unread and len(read) >= 2:
        # e.g. a consortium without MRI yet: X-ray and CT are still read on the same units, so compare them
        notes.append(f"no reads on {', '.join(unread)}: left out; {', '.join(read)} compared")
        mods = read
    elif unread:  # e.g. a night where only CT was read: nothing to compare it with
        notes.append(f"no reads on {', '.join(unread)}: the modalities cannot be compared")
        wide = wide.reindex(columns=pd.MultiIndex.from_product([list(spec.findings), mods]))
    complete = wide.notna().all(axis=1)
    if not complete.all():
        notes.append(f"{int((~complete).sum())} unit(s) without a read on every modality left out")
    wide = wide[complete]
    parts = []
    for finding in spec.findings:
        bits = wide[finding][mods].astype(bool).reset_index()
        counts = (
            bits.groupby([plan.site_column, gcol, *mods], observed=True).size().rename(wcol).reset_index()
        )
        parts.append(counts.assign(finding=finding))
    return pd.concat(parts, ignore_index=True), notes


def _scopes(plan: Plan, pat: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    sites = sites_of(pat, plan)
    return [*((s, pat[pat[plan.site_column].astype(str) == s]) for s in sites), (plan.pooled_label, pat)]


def detection_tables(plan: Plan, spec: Detection, pat: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``rates`` (detection contract), ``independent`` (the paper's test) and ``paired`` frames, over the
    plan's modalities that ``pat`` has (:func:`detection_patterns` leaves out those nobody read)."""
    gcol, wcol = plan.groups.column, plan.weight_column
    mods = [m for m in spec.modalities if m in pat.columns]
    rates: list[dict[str, Any]] = []
    indep: list[dict[str, Any]] = []
    pairs: list[pd.DataFrame] = []
    opts = plan.options
    for site, scope in _scopes(plan, pat):
        for finding in spec.findings:
            for group in plan.groups.levels:
                cell = scope[(scope["finding"] == finding) & (scope[gcol] == group)]
                if cell.empty:
                    continue
                w = cell[wcol].to_numpy(dtype=np.int64)
                bits = cell[mods].astype(bool).to_numpy()
                n = int(w.sum())
                detected = {m: int(w[bits[:, i]].sum()) for i, m in enumerate(mods)}
                detected[spec.combined_label] = int(w[bits.any(axis=1)].sum())
                for m, d in detected.items():
                    rates.append({"site_id": site, "finding": finding, gcol: group, "modality": m,
                                  "detected": d, "n": n, "rate": d / n if n else math.nan})  # fmt: skip
                rows = [m for m in spec.independent_modalities if m in detected]
                if len(rows) >= 2:
                    tab = np.array([[n - detected[m], detected[m]] for m in rows])
                    res = compare_categorical(tab, seed=opts.seed, samples=opts.fisher_monte_carlo_samples)
                    indep.append({"analysis": spec.name, "site_id": site, "finding": finding, gcol: group,
                                  "modalities": " / ".join(rows), "method": "independent_samples (paper)",
                                  "test": res.test, "statistic": res.statistic, "df": res.df,
                                  "p_value": res.p_value, "p_display": fmt.format_p(res.p_value),
                                  "warnings": "; ".join(res.warnings)})  # fmt: skip
                pc = paired.paired_comparison(cell.assign(**{wcol: w}), mods, wcol, opts.mcnemar_exact_below)
                pc.insert(0, gcol, group)
                pc.insert(0, "finding", finding)
                pc.insert(0, "site_id", site)
                pc.insert(0, "analysis", spec.name)
                pc["p_display"] = [fmt.format_p(p) for p in pc["p_value"]]
                pc["p_holm_display"] = [fmt.format_p(p) for p in pc["p_holm"]]
                pairs.append(pc)
    rate_columns = ["site_id", "finding", gcol, "modality", "detected", "n", "rate"]
    return {
        "rates": pd.DataFrame(rates, columns=rate_columns),  # the columns even when nothing is comparable
        "independent": pd.DataFrame(indep),
        "paired": pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame(),
    }
