"""Per-site distribution checks against the other sites (warnings for the report)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohortpool.validate.distribution import WARNING_COLUMNS, compare_sites


def _site(n: int, age: float, op_share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_op = round(n * op_share)
    return pd.DataFrame(
        {
            "age_years": rng.normal(age, 8, n).round(),
            "bmi": rng.normal(23, 3, n),
            "dxa_t_score": rng.normal(-2.5, 1, n),
            "sex": ["M", "F"] * (n // 2) + ["F"] * (n % 2),
            "diagnosis": ["OP"] * n_op + ["MET"] * (n - n_op),
        }
    )


def test_similar_sites_raise_no_warning() -> None:
    frames = {f"site0{i}": _site(60, 68, 0.6, i) for i in (1, 2, 3)}
    warnings = compare_sites(frames)
    assert list(warnings.columns) == WARNING_COLUMNS
    assert warnings.empty


def test_a_site_much_older_and_with_other_case_mix_is_warned() -> None:
    frames = {
        "site01": _site(60, 68, 0.6, 1),
        "site02": _site(60, 67, 0.6, 2),
        "site03": _site(60, 85, 0.05, 3),
    }
    warnings = compare_sites(frames)
    flagged = set(zip(warnings["site_id"], warnings["variable"], strict=True))
    assert ("site03", "age_years") in flagged
    assert ("site03", "diagnosis=OP") in flagged
    assert set(warnings["severity"]) == {"warning"}
    row = warnings[(warnings["site_id"] == "site03") & (warnings["variable"] == "age_years")].iloc[0]
    assert row["difference"] > 0.5 and row["site_value"] > row["others_value"]


def test_small_sites_are_not_judged() -> None:
    frames = {"site01": _site(60, 68, 0.6, 1), "site02": _site(5, 90, 0.0, 2)}
    assert set(compare_sites(frames)["site_id"]) <= {"site01"}
