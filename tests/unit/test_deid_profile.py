"""The table-driven profile: the shipped table, its provenance, and option resolution."""

from __future__ import annotations

import io
from collections import Counter
from importlib import resources

import pytest

from cohortpool.deid.profile import EDITION, OPTIONS, load_profile, read_table

DEFAULT = ("clean_descriptors", "retain_long_modified_dates", "retain_patient_characteristics")


def test_shipped_table_keeps_its_provenance_and_the_reference_counts() -> None:
    text = resources.files("cohortpool.deid").joinpath("data", "ps315_annex_e_2024b.csv").read_text("utf-8")
    assert text.startswith("# source: https://github.com/innolitics/dicom-standard")
    assert "2024b" in EDITION
    exact, masked, private = read_table(io.StringIO(text), ())
    basics = Counter([r.basic for r in exact.values()] + [r.basic for _, _, r in masked] + [private.basic])
    # shared/reference/README.md: X 384, D 92, U 54, Z 42, X/D 22, X/Z 11, X/Z/D 8, Z/D 6, X/Z/U* 2
    assert basics == {
        "X": 384,
        "D": 92,
        "U": 54,
        "Z": 42,
        "X/D": 22,
        "X/Z": 11,
        "X/Z/D": 8,
        "Z/D": 6,
        "X/Z/U*": 2,
    }


def test_default_options_keep_characteristics_and_shift_dates() -> None:
    profile = load_profile(DEFAULT)
    assert profile.rule(0x00100040).action == "K"  # PatientSex, retain patient characteristics
    assert profile.rule(0x00080020).action == "C"  # StudyDate, modified dates
    assert profile.rule(0x0008103E).action == "C"  # SeriesDescription, clean descriptors
    assert profile.rule(0x00100010).action == "Z"  # PatientName, no option changes it
    assert profile.rule(0x60023000).action == "X"  # overlay data in any 60xx group
    assert profile.rule(0x50101234).action == "X"  # curves
    assert profile.rule(0x00280010) is None  # Rows: not in the table
    assert [c for c, _ in profile.code_values] == ["113100", "113105", "113107", "113108"]


def test_basic_profile_alone_removes_what_options_would_keep() -> None:
    basic = load_profile(())
    assert basic.rule(0x00100040).action == "Z"
    assert basic.rule(0x00080020).action == "Z"
    assert load_profile(("retain_long_full_dates",)).rule(0x00080020).action == "K"


def test_unknown_or_contradictory_options_are_refused_with_the_valid_ones_named() -> None:
    with pytest.raises(ValueError, match="retain_uids"):
        load_profile(("keep_everything",))
    with pytest.raises(ValueError, match="not both"):
        load_profile(("retain_long_full_dates", "retain_long_modified_dates"))
    assert len(OPTIONS) == 10
