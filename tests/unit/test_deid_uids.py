"""Deterministic 2.25 UIDs."""

from __future__ import annotations

import re

from cohortpool.deid.uids import IMPLEMENTATION_CLASS_UID, UidMapper, is_well_known


def test_uids_are_2_25_integers_within_64_characters_and_deterministic() -> None:
    mapper = UidMapper(b"k")
    new = mapper.map("1.2.3.4.5")
    assert re.fullmatch(r"2\.25\.[1-9][0-9]{0,38}", new)
    assert len(new) <= 64
    assert UidMapper(b"k").map("1.2.3.4.5") == new
    assert UidMapper(b"other").map("1.2.3.4.5") != new
    assert mapper.map("1.2.3.4.6") != new


def test_standard_uids_and_padding_are_kept_or_stripped() -> None:
    mapper = UidMapper(b"k")
    assert mapper.map("1.2.840.10008.5.1.4.1.1.2") == "1.2.840.10008.5.1.4.1.1.2"
    assert mapper.map("1.2.3\x00") == mapper.map("1.2.3")
    assert is_well_known("1.2.840.10008.1.2.1")
    assert re.fullmatch(r"2\.25\.\d+", IMPLEMENTATION_CLASS_UID)
