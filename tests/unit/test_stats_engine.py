"""run_plan: per site and pooled, row-level or pre-aggregated input, the paper's Table 1 on site 1."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohortpool import stats
from cohortpool.contract import resources
from cohortpool.stats import tests as t
from cohortpool.stats.categorical import ZERO_MARGIN
from cohortpool.stats.compare import compare_groups
from cohortpool.stats.engine import run_plan
from cohortpool.stats.frames import apply_derived
from cohortpool.stats.plan import Plan, load_plan

FINDINGS = [
    "fracture_line", "marrow_oedema", "soft_tissue_mass", "bone_destruction", "posterior_wall_bulging",
    "posterior_element_involvement", "wedge_shape", "posterior_fat_signal", "intravertebral_cleft",
    "normal_disc", "disc_compression", "whole_body_collapse",
]  # fmt: skip


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_plan(resources.plan_path())


@pytest.fixture(scope="module")
def views() -> dict[str, pd.DataFrame]:
    """Three small sites shaped like the analysis views (docs/data_contract.md section 4)."""
    rng = np.random.default_rng(2024)
    n = 180
    dx = np.where(rng.random(n) < 0.4, "MET", "OP")
    patients = pd.DataFrame({
        "site_id": rng.choice(["site01", "site02", "site03"], n),
        "patient_id": [f"P{i:016X}" for i in range(n)],
        "diagnosis": dx,
        "age_years": np.where(dx == "OP", rng.normal(70, 8, n), rng.normal(62, 11, n)).round().astype(int),
        "sex": np.where(rng.random(n) < np.where(dx == "OP", 0.12, 0.7), "M", "F"),
        "bmi": rng.normal(23, 3, n).round(2),
        "osteoporosis": np.where(dx == "OP", True, rng.random(n) < 0.3),
    })  # fmt: skip
    units = patients.loc[patients.index.repeat(rng.integers(1, 3, n)), ["site_id", "patient_id", "diagnosis"]]
    units = units.assign(level=units.groupby("patient_id").cumcount().map({0: "L1", 1: "L2"}))
    reads = []
    for modality, sens in (("XR", 0.5), ("CT", 0.8), ("MR", 0.9)):
        r = units.assign(modality=modality)
        for f in FINDINGS:
            r[f] = rng.random(len(r)) < np.where(r["diagnosis"] == "MET", 0.55, 0.2) * sens
        r["height_loss_pct"] = rng.uniform(10, 60, len(r)).round(0)
        reads.append(r)
    vertebra_reads = pd.concat(reads, ignore_index=True)
    keys = ["site_id", "patient_id", "diagnosis", "level"]
    vertebrae = vertebra_reads.groupby(keys)[[*FINDINGS, "height_loss_pct"]].max().reset_index()
    return {"patients": patients, "vertebra_reads": vertebra_reads, "vertebrae": vertebrae}


@pytest.fixture(scope="module")
def results(plan: Plan, views: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {r.name: r.frame for r in run_plan(plan, views)}


def test_every_analysis_of_the_plan_is_produced(results: dict[str, pd.DataFrame]) -> None:
    expected = {"table1", "table1_forest", "table2", "table2_forest", "table3_rates", "table3_independent",
                "table3_paired", "accuracy", "accuracy_model", "accuracy_model_coefficients"}  # fmt: skip
    assert expected <= set(results)


def test_comparison_rows_per_site_then_pooled_with_the_contract_columns(
    results: dict[str, pd.DataFrame],
) -> None:
    t1 = results["table1"]
    needed = {"analysis", "unit", "site_id", "variable", "level", "test", "statistic", "df", "p_value",
              "p_display", "n_OP", "summary_OP", "n_MET", "summary_MET", "warnings"}  # fmt: skip
    assert needed <= set(t1.columns)
    assert list(dict.fromkeys(t1["site_id"])) == ["site01", "site02", "site03", "ALL"]
    site_tests = set(t1.loc[t1["site_id"] != "ALL", "test"])
    assert site_tests <= set(t.COMPARISON_TESTS)
    pooled = t1[t1["site_id"] == "ALL"].set_index("variable")
    assert pooled.loc["age_years", "test"] == t.RANDOM_EFFECTS_MD
    assert pooled.loc["sex", "test"] == t.CMH
    assert pooled.loc["sex", "level"] == "M"
    assert pooled.loc["osteoporosis", "level"] == "yes"


def test_pooled_summaries_count_every_site(
    results: dict[str, pd.DataFrame], views: dict[str, pd.DataFrame]
) -> None:
    t1 = results["table1"]
    sex = t1[(t1["variable"] == "sex")].set_index("site_id")
    males_op = int(((views["patients"]["sex"] == "M") & (views["patients"]["diagnosis"] == "OP")).sum())
    assert sex.loc["ALL", "count_OP"] == males_op
    assert sex.loc[["site01", "site02", "site03"], "count_OP"].sum() == males_op


def test_multilevel_derived_variable_has_a_row_per_level(results: dict[str, pd.DataFrame]) -> None:
    t2 = results["table2"]
    genant = t2[(t2["variable"] == "genant_category") & (t2["site_id"] == "site01")]
    assert list(genant["level"]) == ["none", "mild", "moderate", "severe"]
    assert genant["p_value"].nunique() == 1  # one test for the variable, repeated on each level row


def test_forest_frames_have_site_rows_and_pooled_rows(results: dict[str, pd.DataFrame]) -> None:
    forest = results["table1_forest"]
    male = forest[forest["label"] == "Male"]
    assert list(male["site_id"]) == ["site01", "site02", "site03", "ALL", "ALL"]
    assert list(male["method"]) == ["site", "site", "site", "mantel_haenszel", "dersimonian_laird"]
    assert male.loc[~male["is_pooled"], "weight"].sum() == pytest.approx(100.0)


def test_detection_rates_and_both_tests(
    results: dict[str, pd.DataFrame], views: dict[str, pd.DataFrame]
) -> None:
    rates = results["table3_rates"]
    one = rates[
        (rates["site_id"] == "ALL") & (rates["finding"] == "fracture_line") & (rates["diagnosis"] == "MET")
    ]
    one = one.set_index("modality")
    reads = views["vertebra_reads"]
    ct = reads[(reads["modality"] == "CT") & (reads["diagnosis"] == "MET")]
    assert one.loc["CT", "detected"] == int(ct["fracture_line"].sum())
    assert one.loc["CT", "n"] == len(ct)
    assert one.loc["ALL", "detected"] >= one.loc[["XR", "CT", "MR"], "detected"].max()
    paired = results["table3_paired"]
    assert set(paired["test"]) <= {t.COCHRAN_Q, t.MCNEMAR_EXACT, t.MCNEMAR_CHI2}
    assert (results["table3_independent"]["method"].str.contains("independent")).all()


def test_preaggregated_frames_give_the_same_results(
    plan: Plan, views: dict[str, pd.DataFrame], results: dict[str, pd.DataFrame]
) -> None:
    vert = views["vertebrae"].drop(columns=["patient_id", "level"])
    weighted = vert.value_counts(dropna=False).rename("n_units").reset_index()
    assert len(weighted) < len(vert)
    reads = views["vertebra_reads"]
    keys = ["site_id", "patient_id", "diagnosis", "level"]
    parts = []
    for f in plan.detection[0].findings:
        wide = reads.pivot_table(index=keys, columns="modality", values=f, aggfunc="max").reset_index()
        cnt = wide.groupby(["site_id", "diagnosis", "XR", "CT", "MR"]).size().rename("n_units").reset_index()
        parts.append(cnt.assign(finding=f))
    patterns = pd.concat(parts, ignore_index=True)
    alt_plan = plan.model_copy(
        update={"detection": (plan.detection[0].model_copy(update={"view": "detection_patterns"}),)}
    )
    agg = {
        r.name: r.frame
        for r in run_plan(alt_plan, {**views, "vertebrae": weighted, "detection_patterns": patterns})
    }
    for name in ("table2", "table3_rates", "table3_paired", "accuracy", "accuracy_model"):
        pd.testing.assert_frame_equal(agg[name], results[name], check_like=True, check_dtype=False)


def _code_words(source: str) -> set[str]:
    """Identifiers and string literals of a module, docstrings and comments excluded."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    words: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            words.add(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.add(node.value)
    return words


def test_engine_names_no_study_variable() -> None:
    for path in (Path(stats.__file__).parent).glob("*.py"):
        words = {w.lower() for w in _code_words(path.read_text(encoding="utf-8"))}
        for study_word in ("diagnosis", "fracture_line", "genant", "osteoporosis", "age_years", "met", "op"):
            assert study_word not in words, f"{path.name} names {study_word!r}"


def test_missing_view_is_a_clear_error(plan: Plan, views: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(KeyError, match="patients"):
        run_plan(plan, {"vertebrae": views["vertebrae"]})


def _completed_years(birth: str, exam: str) -> int:
    b, e = dt.date.fromisoformat(birth), dt.date.fromisoformat(exam)
    return e.year - b.year - ((e.month, e.day) < (b.month, b.day))


def test_site01_table1_prints_the_papers_p_values(plan: Plan) -> None:
    synth = pytest.importorskip("cohortpool.synth.cohort")
    from cohortpool.synth.tables import CLINICAL_COLUMNS, clinical_rows
    from cohortpool.synth.vendors import site01
    from cohortpool.synth.writer import DEFAULT_NIGHT

    clinical = pd.DataFrame(
        clinical_rows(synth.build_cohort(site01(), 7, DEFAULT_NIGHT)), columns=CLINICAL_COLUMNS
    )
    patients = pd.DataFrame({
        "site_id": "site01",
        "diagnosis": clinical["diagnosis"],
        "age_years": [
            _completed_years(b, e)
            for b, e in zip(clinical["birth_date"], clinical["first_exam_date"], strict=True)
        ],
        "sex": clinical["sex"],
        "bmi": clinical["bmi"].astype(float),
        "osteoporosis": clinical["dxa_t_score"].astype(float) <= -2.5,  # the view's definition
    })  # fmt: skip
    one = Plan.model_validate({**plan.model_dump(), "detection": [], "accuracy": [], "comparisons":
                               [plan.comparisons[0].model_dump()], "derived": []})  # fmt: skip
    t1 = run_plan(one, {"patients": patients})[0].frame
    site = t1[t1["site_id"] == "site01"]
    assert list(site["p_display"]) == ["< 0.001", "< 0.001", "0.468", "< 0.001"]
    assert site.set_index("variable").loc[["age_years", "bmi"], "test"].eq(t.STUDENT_T).all()


def test_site01_detection_reproduces_the_papers_xray_row(plan: Plan) -> None:
    synth = pytest.importorskip("cohortpool.synth.cohort")
    from cohortpool.synth.tables import CLINICAL_COLUMNS, READS_COLUMNS, clinical_rows, reads_rows
    from cohortpool.synth.vendors import site01
    from cohortpool.synth.writer import DEFAULT_NIGHT

    cohort = synth.build_cohort(site01(), 7, DEFAULT_NIGHT)
    clinical = pd.DataFrame(clinical_rows(cohort), columns=CLINICAL_COLUMNS)
    reads = pd.DataFrame(reads_rows(cohort), columns=READS_COLUMNS)
    reads = reads.merge(clinical[["mrn", "diagnosis"]], on="mrn").rename(columns={"mrn": "patient_id"})
    for finding in FINDINGS:
        reads[finding] = reads[finding] == "yes"
    reads["site_id"] = "site01"
    one = Plan.model_validate({**plan.model_dump(), "comparisons": [], "accuracy": [], "derived": []})
    rates = next(r.frame for r in run_plan(one, {"vertebra_reads": reads}) if r.kind == "detection")
    xr = rates[(rates["site_id"] == "site01") & (rates["modality"] == "XR")].set_index(
        ["diagnosis", "finding"]
    )
    # the paper's legible X-ray row: OP (n = 98) fracture line 56, marrow oedema 1; MET (n = 43) fracture
    # line 18, bone destruction 13, soft-tissue mass 2
    assert xr.loc[("OP", "fracture_line"), ["detected", "n"]].tolist() == [56, 98]
    assert xr.loc[("OP", "marrow_oedema"), "detected"] == 1
    assert xr.loc[("MET", "fracture_line"), ["detected", "n"]].tolist() == [18, 43]
    assert xr.loc[("MET", "bone_destruction"), "detected"] == 13
    assert xr.loc[("MET", "soft_tissue_mass"), "detected"] == 2


def test_a_night_without_reads_on_a_modality_notes_it_instead_of_failing(
    plan: Plan, views: dict[str, pd.DataFrame]
) -> None:
    ct_only = views["vertebra_reads"][views["vertebra_reads"]["modality"] == "CT"]
    tables = {r.name: r for r in run_plan(plan, {**views, "vertebra_reads": ct_only})}
    rates = tables["table3_rates"]
    assert any("no reads on XR, MR" in note for note in rates.notes)
    assert rates.frame.empty  # no unit was read on every modality: nothing to compare
    assert not tables["table1"].frame.empty  # the rest of the plan still runs


def test_a_site_without_variation_gets_no_zero_width_interval_and_the_pooled_row_says_why(plan: Plan) -> None:
    n = 12
    patients = pd.DataFrame({
        "site_id": ["site01"] * n + ["site02"] * n,
        "patient_id": [f"P{i:016X}" for i in range(2 * n)],
        "diagnosis": ["OP", "MET"] * n,
        "age_years": [70, 60] * n,  # no variation within either group at either site
        "sex": ["M", "F", "F"] * (2 * n // 3),
        "bmi": np.linspace(18, 30, 2 * n),
        "osteoporosis": [True, False] * n,
    })  # fmt: skip
    table, forest = compare_groups(plan, plan.comparisons[0], patients)
    rows = forest[forest["label"] == "Age, years"].set_index("site_id")
    assert rows.loc["site01", "estimate"] == -10.0
    assert np.isnan(rows.loc["site01", "ci_low"]) and np.isnan(
        rows.loc["site01", "ci_high"]
    )  # was -10 to -10
    pooled = table[(table["variable"] == "age_years") & (table["site_id"] == plan.pooled_label)].iloc[0]
    assert np.isnan(pooled["p_value"])
    assert pooled["warnings"] == "no site with an estimate and a positive variance to pool"


def test_a_modality_nobody_read_is_left_out_and_the_others_are_still_compared(
    plan: Plan, views: dict[str, pd.DataFrame]
) -> None:
    no_mr = views["vertebra_reads"][views["vertebra_reads"]["modality"] != "MR"]
    tables = {r.name: r for r in run_plan(plan, {**views, "vertebra_reads": no_mr})}
    rates = tables["table3_rates"]
    assert any("no reads on MR: left out; XR, CT compared" in note for note in rates.notes)
    assert set(rates.frame["modality"]) == {"XR", "CT", "ALL"}  # was empty: every unit lacked its MR read
    paired = tables["table3_paired"].frame
    assert set(paired["comparison"]) == {"all", "XR vs CT"}
    # the counts are those of the reads: X-ray detections of fracture lines among OP units at site01
    reads = no_mr[(no_mr["site_id"] == "site01") & (no_mr["diagnosis"] == "OP") & (no_mr["modality"] == "XR")]
    xr = rates.frame.set_index(["site_id", "finding", "diagnosis", "modality"])
    assert xr.loc[("site01", "fracture_line", "OP", "XR"), "detected"] == int(reads["fracture_line"].sum())
    assert xr.loc[("site01", "fracture_line", "OP", "XR"), "n"] == len(reads)


def test_a_level_nobody_at_a_site_has_gets_no_odds_ratio_and_says_why(plan: Plan) -> None:
    n = 30
    vertebrae = pd.DataFrame({
        "site_id": "site01",
        "patient_id": [f"P{i:016X}" for i in range(n)],
        "diagnosis": ["OP", "OP", "MET"] * (n // 3),
        "level": "L1",
        "height_loss_pct": np.tile([30.0, 45.0, 50.0, 33.0, 41.0], n // 5),  # nobody below 25 %
        **{f: [True, False, False] * (n // 3) for f in FINDINGS},
    })  # fmt: skip
    table, _ = compare_groups(plan, plan.comparisons[1], apply_derived(vertebrae, list(plan.derived)))
    genant = table[(table["variable"] == "genant_category") & (table["site_id"] == "site01")].set_index(
        "level"
    )
    assert np.isnan(genant.loc["none", "estimate"]) and genant.loc["none", "warnings"] == ZERO_MARGIN
    assert np.isfinite(genant.loc["none", "p_value"])  # the test of the whole table stands
    assert np.isfinite(genant.loc["severe", "estimate"])
