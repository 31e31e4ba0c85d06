"""Result tables shaped like the statistics stage's, built by hand for the report tests.

Numbers follow the reference paper's Table 1 and Table 3 where it is legible (site01) and are made up but
internally consistent elsewhere: site cells add up to the pooled cells, levels to their group sizes.
"""

from __future__ import annotations

import pandas as pd

from cohortpool.stats.result import ResultTable

GROUPS = ("OP", "MET")


def _row(
    analysis: str,
    site: str,
    variable: str,
    level: str | None,
    test: str,
    p: float,
    p_display: str,
    summaries: dict[str, tuple[int, str]],
    statistic: float = 1.5,
    df: float | None = 79.0,
) -> dict:
    row = {
        "analysis": analysis,
        "unit": "patient",
        "site_id": site,
        "variable": variable,
        "level": level,
        "test": test,
        "statistic": statistic,
        "df": df,
        "p_value": p,
        "p_display": p_display,
        "warnings": "",
    }
    row["label"] = variable.replace("_", " ").capitalize() + (f" = {level}" if level else "")
    for group, (n, summary) in summaries.items():
        row[f"n_{group}"] = n
        row[f"summary_{group}"] = summary
        # as the statistics engine does: the level count as a number beside its "n (%)" text
        row[f"count_{group}"] = float(summary.split(" ")[0]) if level else float("nan")
    return row


def _table1_rows(site: str, n_op: int, n_met: int, male_op: int, male_met: int) -> list[dict]:
    return [
        _row(
            "table1",
            site,
            "age_years",
            None,
            "student_t",
            0.00086,
            "< 0.001",
            {"OP": (n_op, "69.58 ± 8.46"), "MET": (n_met, "62.13 ± 10.77")},
            3.45,
            n_op + n_met - 2,
        ),
        _row(
            "table1",
            site,
            "sex",
            "M",
            "pearson_chi2",
            1.2e-7,
            "< 0.001",
            {
                "OP": (n_op, f"{male_op} ({100 * male_op / n_op:.2f})"),
                "MET": (n_met, f"{male_met} ({100 * male_met / n_met:.2f})"),
            },
            27.9,
            1.0,
        ),
        _row(
            "table1",
            site,
            "bmi",
            None,
            "student_t",
            0.4682,
            "0.468",
            {"OP": (n_op, "23.38 ± 3.31"), "MET": (n_met, "22.87 ± 2.67")},
            0.73,
            n_op + n_met - 2,
        ),
    ]


def table1_rows(site: str) -> pd.DataFrame:
    """One site's Table 1 rows (the reference study's numbers), for tables of many sites."""
    return pd.DataFrame(_table1_rows(site, 50, 31, 6, 22))


def table1() -> ResultTable:
    """Table 1 as the engine returns it: each site's rows, then the pooled rows (site ``ALL``).

    site02 has 3 men with OP: a small cell whose pooled margin (9 = 6 + 3) must not give it away.
    """
    rows = [
        *_table1_rows("site01", 50, 31, 6, 22),
        *_table1_rows("site02", 40, 20, 3, 14),
        *_table1_rows("ALL", 90, 51, 9, 36),
    ]
    return ResultTable("table1", "Table 1. General data", pd.DataFrame(rows), notes=("Mean ± SD; n (%).",))


def detection() -> ResultTable:
    """Detection of two findings on every modality, for two sites and pooled."""
    rows = []
    data = {  # site -> diagnosis -> (n, {finding: {modality: detected}})
        "site01": {
            "OP": (
                98,
                {
                    "fracture_line": {"XR": 56, "CT": 90, "MR": 80, "ALL": 95},
                    "marrow_oedema": {"XR": 1, "CT": 10, "MR": 92, "ALL": 93},
                },
            ),
            "MET": (
                43,
                {
                    "fracture_line": {"XR": 18, "CT": 30, "MR": 25, "ALL": 33},
                    "marrow_oedema": {"XR": 0, "CT": 4, "MR": 40, "ALL": 40},
                },
            ),
        },
        "site02": {
            "OP": (
                40,
                {
                    "fracture_line": {"XR": 20, "CT": 35, "MR": 30, "ALL": 38},
                    "marrow_oedema": {"XR": 6, "CT": 8, "MR": 36, "ALL": 37},
                },
            ),
            "MET": (
                20,
                {
                    "fracture_line": {"XR": 9, "CT": 15, "MR": 12, "ALL": 16},
                    "marrow_oedema": {"XR": 0, "CT": 7, "MR": 18, "ALL": 18},
                },
            ),
        },
    }
    pooled: dict[tuple[str, str, str], list[int]] = {}
    for site, by_diagnosis in data.items():
        for diagnosis, (n, findings) in by_diagnosis.items():
            for finding, by_modality in findings.items():
                for modality, detected in by_modality.items():
                    rows.append(
                        {
                            "site_id": site,
                            "finding": finding,
                            "diagnosis": diagnosis,
                            "modality": modality,
                            "detected": detected,
                            "n": n,
                            "rate": detected / n,
                        }
                    )
                    cell = pooled.setdefault((finding, diagnosis, modality), [0, 0])
                    cell[0] += detected
                    cell[1] += n
    for (finding, diagnosis, modality), (detected, n) in pooled.items():
        rows.append(
            {
                "site_id": "pooled",
                "finding": finding,
                "diagnosis": diagnosis,
                "modality": modality,
                "detected": detected,
                "n": n,
                "rate": detected / n,
            }
        )
    return ResultTable(
        "table3_detection",
        "Table 3. Detection by modality",
        pd.DataFrame(rows),
        notes=("Vertebra level.",),
        kind="detection",
    )


def forest() -> ResultTable:
    """Per-site and pooled odds ratios of one sign."""
    frame = pd.DataFrame(
        {
            "label": ["Sex = M"] * 3,
            "site_id": ["site01", "site02", "ALL"],
            "estimate": [8.5, 5.2, 6.9],
            "ci_low": [2.1, 1.1, 2.6],
            "ci_high": [34.0, 24.0, 18.3],
            "weight": [60.0, 40.0, 100.0],
            "is_pooled": [False, False, True],
        }
    )
    return ResultTable(
        "table1_forest",
        "Table 1: per-site and pooled odds ratios",
        frame,
        notes=("DerSimonian-Laird random effects.",),
        kind="forest",
    )


def paper_results() -> list[ResultTable]:
    """Table 1 (per site and pooled), detection rates, a forest plot of one sign."""
    return [table1(), detection(), forest()]


def analysis_sets() -> dict[str, pd.DataFrame]:
    """Small analysis views (section 4 of the data contract) for the SPSS export and provenance."""
    patients = pd.DataFrame(
        {
            "site_id": ["site01", "site01", "site02"],
            "patient_id": ["P0123456789ABCDEF", "P00000000000000AA", "PFFFFFFFFFFFFFFFF"],
            "diagnosis": ["OP", "MET", "OP"],
            "age_years": [70, 61, 66],
            "sex": ["F", "M", "F"],
            "bmi": [23.4, None, 21.0],
            "osteoporosis": [True, False, True],
            "primary_tumour": [None, "lung", None],
            "batch_id": [
                "site01_2026-11-24_aaaaaaaaaaaa",
                "site01_2026-11-24_aaaaaaaaaaaa",
                "site02_2026-11-24_bbbbbbbbbbbb",
            ],
        }
    )
    return {"patients": patients}
