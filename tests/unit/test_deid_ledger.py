"""The vault: never inside the submission, owner-only, deterministic ledger and crosswalk."""

from __future__ import annotations

import pytest

from cohortpool.deid.ledger import LedgerRow, Vault, VaultError, check_vault


def test_vault_inside_the_output_or_input_is_refused(tmp_path) -> None:
    with pytest.raises(VaultError, match="inside the output"):
        check_vault(tmp_path / "out" / "vault", tmp_path / "out", tmp_path / "in")
    with pytest.raises(VaultError, match="inside the input"):
        check_vault(tmp_path / "in" / "vault", tmp_path / "out", tmp_path / "in")
    check_vault(tmp_path / "vault", tmp_path / "out", tmp_path / "in")


def test_ledger_is_sorted_owner_only_and_rewritten_identically(tmp_path) -> None:
    vault = Vault(tmp_path / "v")
    rows = [
        LedgerRow("b.dcm", 2, "bb", "quarantined", reason="not DICOM: x"),
        LedgerRow("a.dcm", 1, "aa", "deidentified", "dicom/x.dcm"),
    ]
    path = vault.write_ledger("2024-01-01", rows)
    first = path.read_bytes()
    assert [r.input_path for r in vault.read_ledger("2024-01-01")] == ["a.dcm", "b.dcm"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "v").stat().st_mode & 0o777 == 0o700
    mtime = path.stat().st_mtime_ns
    vault.write_ledger("2024-01-01", list(reversed(rows)))
    assert path.read_bytes() == first and path.stat().st_mtime_ns == mtime


def test_crosswalk_merges_across_nights_without_duplicates(tmp_path) -> None:
    vault = Vault(tmp_path / "v")
    vault.merge_crosswalk([("patient", "M1", "PAAAA", "-3")])
    path = vault.merge_crosswalk([("patient", "M2", "PBBBB", "-9"), ("patient", "M1", "PAAAA", "-3")])
    lines = path.read_text().splitlines()
    assert lines == ["kind,local_id,pseudonym,date_shift_days", "patient,M1,PAAAA,-3", "patient,M2,PBBBB,-9"]


def test_quarantine_copies_the_original_keeping_its_relative_path(tmp_path) -> None:
    source = tmp_path / "in" / "a" / "b.dcm"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"junk")
    kept = Vault(tmp_path / "v").quarantine("2024-01-01", source, "a/b.dcm")
    assert kept == tmp_path / "v" / "quarantine" / "2024-01-01" / "a" / "b.dcm"
    assert kept.read_bytes() == b"junk" and source.exists()
    assert (tmp_path / "v" / "quarantine" / "2024-01-01" / "a").stat().st_mode & 0o777 == 0o700
