"""Keyed pseudonyms: contract formats, stability, site separation, date shifts."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from cohortpool.deid.pseudonym import Pseudonymiser, parse_date, shift_da, shift_dt

KEYS = Pseudonymiser(b"unit-secret", "site01")


def test_patient_id_is_p_plus_16_hex_of_hmac_of_site_and_mrn() -> None:
    expected = hmac.new(b"unit-secret", b"site01" + b"12345", hashlib.sha256).hexdigest()[:16].upper()
    assert KEYS.patient_id("12345") == "P" + expected
    assert re.fullmatch(r"P[0-9A-F]{16}", KEYS.patient_id(" 12345 "))


def test_accession_id_is_a_plus_16_hex_and_matches_the_dicom_digest() -> None:
    assert re.fullmatch(r"A[0-9A-F]{16}", KEYS.accession_id("ACC1"))
    assert KEYS.accession_id("ACC1") == "A" + KEYS.accession_digest("ACC1")


def test_same_mrn_differs_across_sites_and_secrets_but_is_stable() -> None:
    other_site = Pseudonymiser(b"unit-secret", "site02")
    other_key = Pseudonymiser(b"another-secret", "site01")
    assert KEYS.patient_id("777") == Pseudonymiser(b"unit-secret", "site01").patient_id("777")
    assert KEYS.patient_id("777") != other_site.patient_id("777")
    assert KEYS.patient_id("777") != other_key.patient_id("777")


def test_date_shift_is_per_patient_within_range_and_never_zero() -> None:
    shifts = {KEYS.shift_days(f"MRN{i}") for i in range(300)}
    assert all(-365 <= s <= -1 for s in shifts)
    assert len(shifts) > 100  # patients do not share one offset
    assert KEYS.shift_days("MRN1") == KEYS.shift_days("MRN1")


def test_shifting_preserves_intervals_and_keeps_time_and_offset() -> None:
    assert shift_da("20240301", -1) == "20240229"
    assert shift_da("2024.03.01", -31) == "20240130"
    assert shift_dt("20240301101010.123+0100", -1) == "20240229101010.123+0100"
    assert shift_dt("2024", -1) is None  # partial dates cannot be shifted without inventing precision
    assert shift_da("not a date", -1) is None
    assert parse_date("20240231") is None


def test_secret_is_never_shown_and_empty_secret_is_refused() -> None:
    assert "unit-secret" not in repr(KEYS)
    with pytest.raises(ValueError, match="empty"):
        Pseudonymiser(b"", "site01")
