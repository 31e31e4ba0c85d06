"""Plans are validated strictly: typos and Genant-style gaps fail with the file and field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cohortpool.contract import resources
from cohortpool.stats.plan import PlanError, load_plan, parse_plan

VCF = resources.plan_path()


def _minimal() -> dict[str, Any]:
    return {
        "name": "x",
        "title": "X",
        "groups": {"column": "g", "levels": ["A", "B"]},
        "comparisons": [
            {"name": "t1", "title": "T1", "view": "patients", "unit": "patient",
             "variables": [{"column": "age", "type": "continuous"}]}
        ],
    }  # fmt: skip


def test_vcf_plan_loads_with_the_papers_tables() -> None:
    plan = load_plan(VCF)
    assert plan.groups.levels == ("OP", "MET")
    t1 = plan.comparisons[0]
    assert [v.column for v in t1.variables] == ["age_years", "sex", "bmi", "osteoporosis"]
    assert plan.detection[0].findings == (
        "fracture_line",
        "marrow_oedema",
        "soft_tissue_mass",
        "bone_destruction",
    )


def test_vcf_plan_genant_bins_are_closed_and_gap_free() -> None:
    genant = load_plan(VCF).derived[0]
    labels = [b.label for b in genant.bins]
    assert labels == ["none", "mild", "moderate", "severe"]
    mild, moderate = genant.bins[1], genant.bins[2]
    assert (mild.min, mild.max, mild.max_inclusive) == (20, 25, True)
    assert (moderate.min, moderate.min_inclusive) == (25, False)


def test_papers_genant_boundaries_with_a_gap_are_rejected() -> None:
    data = _minimal()
    data["derived"] = [
        {"name": "genant", "view": "vertebrae", "source": "h",
         "bins": [{"label": "mild", "max": 25, "max_inclusive": True},
                  {"label": "moderate", "min": 26, "max": 40, "max_inclusive": True},
                  {"label": "severe", "min": 40, "min_inclusive": False}]}
    ]  # fmt: skip
    with pytest.raises(PlanError, match="gap or overlap"):
        parse_plan(data)


def test_boundary_claimed_by_both_bins_is_rejected() -> None:
    data = _minimal()
    data["derived"] = [
        {"name": "g2", "view": "vertebrae", "source": "h",
         "bins": [{"label": "low", "max": 20, "max_inclusive": True},
                  {"label": "high", "min": 20, "min_inclusive": True}]}
    ]  # fmt: skip
    with pytest.raises(PlanError, match="exactly one"):
        parse_plan(data)


def test_unknown_key_names_the_file_and_field(tmp_path: Path) -> None:
    data = _minimal()
    data["comparisons"][0]["variables"][0]["nomal"] = False
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(PlanError) as err:
        load_plan(path)
    assert str(path) in str(err.value) and "nomal" in str(err.value)


def test_unknown_view_is_rejected() -> None:
    data = _minimal()
    data["comparisons"][0]["view"] = "raw.clinical"
    with pytest.raises(PlanError, match="view"):
        parse_plan(data)


def test_missing_plan_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="not found"):
        load_plan(tmp_path / "nope.yaml")
