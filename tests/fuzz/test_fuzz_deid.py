"""Fuzz: mutated DICOM files through ``cohortpool.deid.deidentify_tree``.

Whatever the bytes, the run finishes without an exception, every input file is accounted for exactly once
(de-identified into a file pydicom reads, quarantined with a reason and its original in the vault, or a
duplicate), and no identifying token of the valid file reaches the output.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pydicom
from dicom_mutations import Sample, samples
from hypothesis import given
from hypothesis import strategies as st
from profiles import examples

from cohortpool.deid import DEIDENTIFIED, DUPLICATE, QUARANTINED, LedgerRow, deidentify_tree

SITE, NIGHT = "site01", "2024-05-06"
SECRET = b"fuzz-tier-secret-not-a-real-one-0123456789abcdef"


def _deid(samples: list[Sample], root: Path) -> tuple[Path, list[LedgerRow]]:
    """Write the samples as one night's DICOM folder and de-identify it; the output folder and ledger."""
    in_dir, out, vault = root / "dicom", root / "out", root / "vault"
    (in_dir / "series").mkdir(parents=True)
    names = []
    for number, sample in enumerate(samples):
        names.append(f"series/f{number}.dcm")
        (in_dir / names[-1]).write_bytes(sample.data())

    result = deidentify_tree(in_dir, out, vault, SITE, SECRET, NIGHT)

    # every input exactly once, in the result and in the ledger the site keeps
    assert sorted(row.input_path for row in result.rows) == sorted(names)
    with (vault / "ledger" / f"{NIGHT}.csv").open(encoding="utf-8", newline="") as handle:
        ledger = {row["input_path"]: row for row in csv.DictReader(handle)}
    assert sorted(ledger) == sorted(names)
    for row in result.rows:
        assert row.outcome in (DEIDENTIFIED, QUARANTINED, DUPLICATE), row
        assert ledger[row.input_path]["outcome"] == row.outcome
        if row.outcome == QUARANTINED:
            assert row.reason.strip(), f"{row.input_path} quarantined without a reason"
            assert (vault / "quarantine" / NIGHT / row.input_path).is_file()
    return out, result.rows


def _leaks(samples: list[Sample], out: Path) -> dict[str, list[str]]:
    """Output file -> identifying tokens of the valid files found in its bytes."""
    tokens = {token.encode() for sample in samples for token in sample.tokens}
    found = {}
    for path in sorted(out.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if hits := sorted(t.decode() for t in tokens if t in data):
                found[path.relative_to(out).as_posix()] = hits
    return found


@examples(ci=40)
@given(files=st.lists(samples(), min_size=1, max_size=3))
def test_every_mutated_file_is_accounted_for_and_its_output_is_readable(files: list[Sample]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out, rows = _deid(files, Path(tmp))
        for row in rows:
            if row.outcome == DEIDENTIFIED:
                pydicom.dcmread(out / row.output_path)  # a file DICOM readers can open, not garbage


@examples(ci=40)
@given(files=st.lists(samples(), min_size=1, max_size=3))
def test_no_identifier_of_a_mutated_file_leaves_the_site(files: list[Sample]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out, _ = _deid(files, Path(tmp))
        assert _leaks(files, out) == {}
