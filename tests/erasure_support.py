"""What the erasure tests look at: the hub's stores file by file, and which files still hold a value."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq

from cohortpool.contract.erasure import ERASURE_FILE
from cohortpool.pipeline.erasure import Needles, copy_csv_without


def stores(out: Path) -> dict[str, str]:
    """Every file of the hub's stores: relative path -> sha256."""
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for store in ("submissions", "validated", "rejected")
        for p in sorted((out / store).rglob("*"))
        if p.is_file()
    }


def holding(out: Path, text: str) -> list[str]:
    """Files of the stores holding ``text`` (Parquet read, not grepped: its pages may be compressed)."""
    found = []
    for rel in stores(out):
        path = out / rel
        if path.suffix == ".parquet":
            held = text in set(pq.read_table(path).column("patient_id").to_pylist())
        else:
            held = text.encode() in path.read_bytes()
        if held:
            found.append(rel)
    return found


def allowed(rel: str) -> bool:
    """What may name a withdrawn patient: the withdrawal itself, the hub's erasure records, and the sealed
    submission.json, whose listing names the removed DICOM files' paths (dicom/<patient_id>/...) and
    checksums, no value of theirs (the site's seal covers it: rewriting it would unmake the submission)."""
    return rel.endswith(("/withdrawn.csv", f"/{ERASURE_FILE}", "/submission.json"))


def erase_csv_rows(data: bytes, patients: Sequence[str]) -> tuple[bytes, int]:
    """``data`` (a CSV file) without the records of ``patients``, and how many records went."""
    sink = io.BytesIO()
    erased = copy_csv_without(io.BytesIO(data), sink, Needles(patients))
    return sink.getvalue(), erased
