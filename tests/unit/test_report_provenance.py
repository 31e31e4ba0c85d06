"""Provenance: the batches behind each result, the plan's checksum, library versions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from cohortpool.contract.files import sha256_file
from cohortpool.report.provenance import Provenance, batches_by_site, library_versions, sites_of
from report_results import analysis_sets, paper_results


def test_batches_are_collected_per_site_from_the_analysis_views() -> None:
    frames = analysis_sets()
    frames["vertebrae"] = pd.DataFrame(
        {"site_id": ["site02"], "batch_id": ["site02_2026-11-25_cccccccccccc"]}
    )
    assert batches_by_site(frames) == {
        "site01": ("site01_2026-11-24_aaaaaaaaaaaa",),
        "site02": ("site02_2026-11-24_bbbbbbbbbbbb", "site02_2026-11-25_cccccccccccc"),
    }


def test_site_tables_draw_on_their_site_and_pooled_ones_on_all() -> None:
    table1 = paper_results()[0]
    site01 = replace(table1, frame=table1.frame[table1.frame["site_id"] == "site01"])
    assert sites_of(site01) == {"site01"}
    assert sites_of(table1) is None
    provenance = Provenance("p", "0", "0", batches_by_site(analysis_sets()))
    assert provenance.batches_behind(site01) == ("site01_2026-11-24_aaaaaaaaaaaa",)
    assert len(provenance.batches_behind(table1)) == 2


def test_plan_checksum_changes_with_one_byte(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: a\n")
    before = sha256_file(plan)
    plan.write_text("name: b\n")
    assert before != sha256_file(plan)
    assert before == __import__("hashlib").sha256(b"name: a\n").hexdigest()


def test_library_versions_skip_what_is_not_installed() -> None:
    versions = dict(library_versions(("pandas", "no-such-package-cohortpool")))
    assert versions == {"pandas": pd.__version__}
