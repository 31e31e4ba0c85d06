"""Where counts sit in each result layout, and the sums that tie tables together."""

from __future__ import annotations

import pandas as pd

from cohortpool.report.cells import build_grid, shape_of
from cohortpool.report.release import release
from cohortpool.stats.result import ResultTable


def _table2(mass_met: dict[str, int]) -> ResultTable:
    """A one-sign Table 2: soft-tissue mass by group, two sites and pooled (site ALL)."""
    n = {"s1": (30, 20), "s2": (25, 15)}
    rows = []
    for site, (n_op, n_met) in n.items():
        rows.append((site, n_op, 10, n_met, mass_met[site]))
    rows.append(("ALL", 55, 20, 35, sum(mass_met.values())))
    frame = pd.DataFrame(
        [
            {
                "analysis": "table2",
                "unit": "vertebra",
                "site_id": s,
                "variable": "soft_tissue_mass",
                "label": "Soft-tissue mass",
                "level": "yes",
                "n_OP": a,
                "count_OP": float(b),
                "summary_OP": f"{b} ({100 * b / a:.2f})",
                "n_MET": c,
                "count_MET": float(d),
                "summary_MET": f"{d} ({100 * d / c:.2f})",
                "estimate": 2.0,
                "ci_low": 1.0,
                "ci_high": 4.0,
                "test": "pearson_chi2",
                "statistic": 5.0,
                "df": 1.0,
                "p_value": 0.02,
                "p_display": "0.020",
                "warnings": "",
            }
            for s, a, b, c, d in rows
        ]
    )
    return ResultTable("table2", "Table 2", frame)


def _accuracy(mass_met: dict[str, int]) -> ResultTable:
    n = {"s1": (30, 20), "s2": (25, 15), "ALL": (55, 35)}
    met = {**mass_met, "ALL": sum(mass_met.values())}
    op = {"s1": 10, "s2": 10, "ALL": 20}
    frame = pd.DataFrame(
        [
            {
                "site_id": s,
                "sign": "soft_tissue_mass",
                "metric": m,
                "estimate": 0.5,
                "ci_low": 0.3,
                "ci_high": 0.7,
                "tp": met[s],
                "fp": op[s],
                "fn": n[s][1] - met[s],
                "tn": n[s][0] - op[s],
                "analysis": "accuracy",
                "positive": "MET",
            }
            for s in ("s1", "s2", "ALL")
            for m in ("sensitivity", "specificity")
        ]
    )
    return ResultTable("accuracy", "Accuracy", frame)


def test_accuracy_counts_are_the_same_cells_as_table2_counts() -> None:
    grid, _ = build_grid([_table2({"s1": 12, "s2": 9}), _accuracy({"s1": 12, "s2": 9})])
    assert not [k for k in grid.values if k[0] == "accuracy"]
    # FN (MET without the sign) is Table 2's unprinted remainder, now printed: it is published
    assert ("rest", "table2", "vertebra", "soft_tissue_mass", "MET", "s1") in grid.published


def test_accuracy_counts_that_disagree_with_table2_stay_separate_cells() -> None:
    grid, _ = build_grid([_table2({"s1": 12, "s2": 9}), _accuracy({"s1": 13, "s2": 9})])
    assert ("accuracy", "accuracy", "soft_tissue_mass", "tp", "s1") in grid.values


def test_a_sign_hidden_in_table2_is_hidden_in_the_accuracy_table_too() -> None:
    released = {
        r.name: r.frame for r in release([_table2({"s1": 3, "s2": 9}), _accuracy({"s1": 3, "s2": 9})], 5)
    }
    s1 = released["accuracy"][released["accuracy"]["site_id"] == "s1"]
    assert set(s1["tp"]) == {"<5"}
    assert s1["estimate"].isna().all() and s1["ci_low"].isna().all()
    table2 = released["table2"]
    assert table2[table2["site_id"] == "s1"].iloc[0]["summary_MET"] == "<5"


def _detection_and_paired(b: int, c: int) -> list[ResultTable]:
    rates = pd.DataFrame(
        [
            {
                "site_id": "s1",
                "finding": "fracture_line",
                "diagnosis": "OP",
                "modality": m,
                "detected": d,
                "n": 60,
                "rate": d / 60,
            }
            for m, d in (("XR", 30), ("CT", 30 - b + c))
        ]
    )
    paired = pd.DataFrame(
        [
            {
                "analysis": "table3",
                "site_id": "s1",
                "finding": "fracture_line",
                "diagnosis": "OP",
                "comparison": "XR vs CT",
                "test": "mcnemar_exact",
                "statistic": float(b),
                "df": None,
                "p_value": 0.5,
                "p_holm": 0.5,
                "discordant_b": float(b),
                "discordant_c": float(c),
                "warnings": "",
                "p_display": "0.500",
                "p_holm_display": "0.500",
            }
        ]
    )
    return [
        ResultTable("table3_rates", "Rates", rates, kind="detection"),
        ResultTable("table3_paired", "Paired", paired),
    ]


def test_discordant_pairs_are_cells_tied_to_the_detection_counts() -> None:
    results = _detection_and_paired(b=8, c=12)
    assert shape_of(results[1]) == "paired"
    grid, _ = build_grid(results)
    line = [ln for ln in grid.lines if any(k[0] == "discordant" for k in ln)]
    assert len(line) == 1 and len(line[0]) == 4


def test_small_discordant_count_is_hidden_with_its_partner_and_statistics() -> None:
    paired = release(_detection_and_paired(b=2, c=12), 5)[1].frame.iloc[0]
    assert paired["discordant_b"] == "<5"
    # det(XR) - det(CT) = b - c: with both detection counts shown, c must go too
    assert paired["discordant_c"] == "*"
    assert paired["statistic"] is None and paired["p_value"] is None
    assert paired["p_display"] == ">= 0.05" and paired["p_holm_display"] is None
