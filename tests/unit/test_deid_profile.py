"""The table-driven profile: the shipped table, its provenance, and option resolution."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from importlib import resources

import pytest

from cohortpool.deid.profile import EDITION, OPTIONS, TABLE_FILE, TABLE_SHA256, load_profile, read_table

DEFAULT = ("clean_descriptors", "retain_long_modified_dates", "retain_patient_characteristics")


def _shipped() -> bytes:
    return resources.files("cohortpool.deid").joinpath("data", TABLE_FILE).read_bytes()


def test_shipped_table_is_the_pinned_one() -> None:
    # an edit to the table (a wrong K, a dropped row) must be deliberate: it changes TABLE_SHA256 too
    assert hashlib.sha256(_shipped()).hexdigest() == TABLE_SHA256


def test_shipped_table_keeps_its_provenance_and_the_reference_counts() -> None:
    text = _shipped().decode("utf-8")
    provenance = [line for line in text.splitlines() if line.startswith("#")]
    assert EDITION == "DICOM PS3.15 2026c" and TABLE_FILE == "ps315_annex_e_2026c.csv"
    assert provenance[0].startswith(f"# source: edition: {EDITION} (Table E.1-1)")
    assert "dicom-anonymizer 2.1.0" in provenance[0] and "dicomfields_2026c.py" in provenance[0]
    assert "https://github.com/innolitics/dicom-standard" in provenance[1] and "2024b" in provenance[1]
    exact, masked, private = read_table(io.StringIO(text), ())
    basics = Counter([r.basic for r in exact.values()] + [r.basic for _, _, r in masked] + [private.basic])
    # shared/reference/README.md (2024b): X 384, D 92, U 54, Z 42, X/D 22, X/Z 11, X/Z/D 8, Z/D 6,
    # X/Z/U* 2; 2026c adds X 32, X/D 1, D 1, U 1 and changes none
    assert basics == {
        "X": 384 + 32,
        "D": 92 + 1,
        "U": 54 + 1,
        "Z": 42,
        "X/D": 22 + 1,
        "X/Z": 11,
        "X/Z/D": 8,
        "Z/D": 6,
        "X/Z/U*": 2,
    }


def test_rows_2026c_adds_take_their_basic_action_under_every_option() -> None:
    lines = io.StringIO(_shipped().decode("utf-8"), newline="")
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    added = rows[621:]
    assert len(rows) == 656 and len(added) == 35
    assert all(not row[option] for row in added for option in OPTIONS)  # empty: conservative
    everything = load_profile(tuple(o for o in OPTIONS if o != "retain_long_full_dates"))
    assert everything.rule(0x00100012).action == "X"  # Name to Use (2026c), no option retains it
    assert everything.rule(0x0040A034).action == "X"  # Effective Start DateTime: not shifted, removed
    assert everything.rule(0x300A0054).action == "U"  # Table Top Position Alignment UID
    assert load_profile(DEFAULT).rule(0x00102162).action == "X"  # Ethnic Groups, despite characteristics


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


def test_conformance_overrides_replace_only_the_tables_own_action() -> None:
    default = load_profile(
        ("clean_descriptors", "retain_long_modified_dates", "retain_patient_characteristics")
    )
    assert default.exact[0x00081110].action == "X"  # table: X/Z, an emptied Type 3 sequence is invalid
    assert default.exact[0x00120081].action == "X"  # table: D, a Type 1C without its condition
    # an option that retains the attribute is not overridden
    assert load_profile(("retain_institution_identity",)).exact[0x00120081].action == "K"
    assert load_profile(("retain_uids",)).exact[0x00081110].action == "K"
