"""Site 1 reproduces the reference study (vcf_paper.md), recomputed independently from the CSV files."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from scipy import stats
from synth_support import drop, read_csv, synthesize

from cohortpool.synth.findings import genant_grade

TABLE2_MORE_IN_MET = (
    "posterior_wall_bulging",
    "whole_body_collapse",
    "posterior_element_involvement",
    "soft_tissue_mass",
    "normal_disc",
)
TABLE2_LESS_IN_MET = ("wedge_shape", "posterior_fat_signal", "intravertebral_cleft", "disc_compression")


# one worker synthesizes the consortium once for all of these modules (make test runs --dist loadgroup)
pytestmark = pytest.mark.xdist_group("synth_consortium")


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return synthesize(tmp_path_factory)


@pytest.fixture(scope="module")
def clinical(consortium: tuple[Path, dict[str, Any]]) -> list[dict[str, str]]:
    return read_csv(drop(consortium[0], "site01") / "clinical.csv")


@pytest.fixture(scope="module")
def reads(consortium: tuple[Path, dict[str, Any]]) -> list[dict[str, str]]:
    return read_csv(drop(consortium[0], "site01") / "reads.csv")


def printed_p(p: float) -> str:
    """How the paper prints a P value."""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def age(row: dict[str, str]) -> int:
    """Completed years at the first exam, computed here independently of the generator."""
    birth = dt.date.fromisoformat(row["birth_date"])
    exam = dt.date.fromisoformat(row["first_exam_date"])
    return exam.year - birth.year - ((exam.month, exam.day) < (birth.month, birth.day))


def by_group(rows: list[dict[str, str]], value: Any) -> tuple[list[Any], list[Any]]:
    op = [value(r) for r in rows if r["diagnosis"] == "OP"]
    met = [value(r) for r in rows if r["diagnosis"] == "MET"]
    return op, met


def test_site01_has_the_papers_groups_and_vertebrae(
    clinical: list[dict[str, str]], reads: list[dict[str, str]]
) -> None:
    groups = Counter(r["diagnosis"] for r in clinical)
    assert groups == {"OP": 50, "MET": 31}
    assert all(r["pathology_confirmed"] == "yes" for r in clinical)
    group_of = {r["mrn"]: r["diagnosis"] for r in clinical}
    vertebrae = {(r["mrn"], r["level"]) for r in reads}
    assert Counter(group_of[m] for m, _ in vertebrae) == {"OP": 98, "MET": 43}
    # every vertebra read once on each modality
    assert Counter((r["mrn"], r["level"]) for r in reads) == dict.fromkeys(vertebrae, 3)
    assert all(r["primary_tumour"] for r in clinical if r["diagnosis"] == "MET")
    assert not any(r["primary_tumour"] for r in clinical if r["diagnosis"] == "OP")


def test_site01_age_reproduces_table1(clinical: list[dict[str, str]]) -> None:
    op, met = by_group(clinical, age)
    assert (round(statistics.mean(op), 2), round(statistics.stdev(op), 3), min(op), max(op)) == (
        69.58,
        8.457,
        48,
        89,
    )
    assert (round(statistics.mean(met), 2), round(statistics.stdev(met), 3), min(met), max(met)) == (
        62.13,
        10.773,
        39,
        83,
    )
    assert printed_p(stats.ttest_ind(op, met).pvalue) == "<0.001"


def test_site01_bmi_reproduces_table1_with_p_0468(clinical: list[dict[str, str]]) -> None:
    op, met = by_group(clinical, lambda r: float(r["bmi"]))
    assert (round(statistics.mean(op), 2), round(statistics.stdev(op), 2), min(op), max(op)) == (
        23.38,
        3.31,
        15.43,
        31.56,
    )
    assert (round(statistics.mean(met), 2), round(statistics.stdev(met), 2), min(met), max(met)) == (
        22.87,
        2.67,
        18.13,
        28.18,
    )
    assert printed_p(stats.ttest_ind(op, met).pvalue) == "0.468"  # Student's t, as the paper


def test_site01_bmi_agrees_with_height_and_weight(clinical: list[dict[str, str]]) -> None:
    for r in clinical:
        computed = float(r["weight_kg"]) / (float(r["height_cm"]) / 100) ** 2
        assert abs(computed - float(r["bmi"])) < 0.06, r["mrn"]


def test_site01_sex_and_osteoporosis_reproduce_table1(clinical: list[dict[str, str]]) -> None:
    op, met = by_group(clinical, lambda r: r["sex"] == "M")
    assert (sum(op), sum(met)) == (6, 22)
    assert (
        printed_p(stats.chi2_contingency([[sum(op), 50 - sum(op)], [sum(met), 31 - sum(met)]])[1]) == "<0.001"
    )
    op_t, met_t = by_group(clinical, lambda r: float(r["dxa_t_score"]) <= -2.5)
    assert sum(op_t) == 50
    assert sum(met_t) < 31 / 2
    table = [[sum(op_t), 50 - sum(op_t)], [sum(met_t), 31 - sum(met_t)]]
    assert printed_p(stats.chi2_contingency(table)[1]) == "<0.001"


def _vertebra_findings(
    clinical: list[dict[str, str]], reads: list[dict[str, str]]
) -> dict[tuple[str, str], dict[str, dict[str, bool]]]:
    """(mrn, level) -> modality -> finding -> seen, plus ``ALL`` (seen on any modality) and the group."""
    group_of = {r["mrn"]: r["diagnosis"] for r in clinical}
    out: dict[tuple[str, str], dict[str, dict[str, bool]]] = {}
    for r in reads:
        v = out.setdefault((r["mrn"], r["level"]), {"group": {group_of[r["mrn"]]: True}})
        v[r["modality"]] = {k: val == "yes" for k, val in r.items() if val in ("yes", "no")}
    for v in out.values():
        v["ALL"] = {f: v["XR"][f] or v["CT"][f] or v["MR"][f] for f in v["XR"]}
    return out


def count(vertebrae: dict[Any, Any], group: str, modality: str, finding: str) -> int:
    return sum(v[modality][finding] for v in vertebrae.values() if group in v["group"])


def test_site01_xray_counts_equal_table3(clinical: list[dict[str, str]], reads: list[dict[str, str]]) -> None:
    v = _vertebra_findings(clinical, reads)
    assert count(v, "OP", "XR", "fracture_line") == 56
    assert count(v, "OP", "XR", "marrow_oedema") == 1
    assert count(v, "MET", "XR", "fracture_line") == 18
    assert count(v, "MET", "XR", "bone_destruction") == 13
    assert count(v, "MET", "XR", "soft_tissue_mass") == 2


def test_site01_modalities_rank_as_the_paper_concludes(
    clinical: list[dict[str, str]], reads: list[dict[str, str]]
) -> None:
    v = _vertebra_findings(clinical, reads)
    for group in ("OP", "MET"):
        ct = count(v, group, "CT", "fracture_line")
        assert ct > count(v, group, "MR", "fracture_line") > count(v, group, "XR", "fracture_line")
        mr = count(v, group, "MR", "marrow_oedema")
        assert mr > count(v, group, "CT", "marrow_oedema") + 10
        assert mr > count(v, group, "XR", "marrow_oedema") + 10
    mass = {m: count(v, "MET", m, "soft_tissue_mass") for m in ("XR", "CT", "MR")}
    assert mass["MR"] > mass["CT"] > mass["XR"]
    destruction = {m: count(v, "MET", m, "bone_destruction") for m in ("XR", "CT", "MR", "ALL")}
    assert destruction["ALL"] > max(destruction["XR"], destruction["CT"], destruction["MR"])


@pytest.mark.parametrize("finding", TABLE2_MORE_IN_MET + TABLE2_LESS_IN_MET)
def test_site01_signs_follow_table2_directions(
    clinical: list[dict[str, str]], reads: list[dict[str, str]], finding: str
) -> None:
    v = _vertebra_findings(clinical, reads)
    for modality in ("ALL", "MR"):
        op, met = count(v, "OP", modality, finding), count(v, "MET", modality, finding)
        table = [[met, 43 - met], [op, 98 - op]]
        p = stats.chi2_contingency(table)[1]
        more = met / 43 > op / 98
        assert more == (finding in TABLE2_MORE_IN_MET), (modality, finding, op, met)
        assert p < 0.05, (modality, finding, op, met, p)


def test_genant_grade_follows_height_loss_with_closed_boundaries(
    consortium: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = consortium
    for site in ("site01", "site02", "site03"):
        for r in read_csv(drop(out, site) / "reads.csv"):
            loss = float(r["height_loss_pct"])
            expected = 0 if loss < 20 else 1 if loss <= 25 else 2 if loss <= 40 else 3
            assert int(r["genant_grade"]) == expected, (site, r)
    assert [genant_grade(x) for x in (19.9, 20.0, 25.0, 25.1, 40.0, 40.1)] == [0, 1, 1, 2, 2, 3]


def test_other_sites_differ_in_size_case_mix_and_sign_prevalence(
    consortium: tuple[Path, dict[str, Any]],
) -> None:
    out, summary = consortium
    sizes = [s["patients"] for s in summary["sites"]]
    assert len(set(sizes)) == 3
    shares = [s["patients_met"] / s["patients"] for s in summary["sites"]]
    assert len({round(x, 2) for x in shares}) == 3
    prevalence = {}
    for site in ("site02", "site03"):
        rows = read_csv(drop(out, site) / "reads.csv")
        mr = [r for r in rows if r["modality"] == "MR"]
        prevalence[site] = {f: sum(r[f] == "yes" for r in mr) / len(mr) for f in TABLE2_MORE_IN_MET}
        names = [r["patient_name"] for r in read_csv(drop(out, site) / "clinical.csv")]
        assert all(n.isascii() and " " in n for n in names)
    assert prevalence["site02"] != prevalence["site03"]
