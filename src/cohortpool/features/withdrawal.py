"""Withdrawn patients' de-identified DICOM never leaves: removed from the submission before packaging.

A patient listed in the drop's ``withdrawn.csv`` revoked consent: none of their table rows are released
(:mod:`cohortpool.features.tables`), and their images must not be either. The de-identification stage
does not know the list (it decides per file and writes ``dicom/<patient_id>/...``), so the files it
wrote for a withdrawn patient are removed here, before ``submission.json`` is written, and listed in
the vault (``VAULT/withdrawn/<night>.csv``: ``patient_id, output_path``, 0600 in a 0700 folder) beside
the de-identification ledger that recorded them as de-identified: input files = de-identified +
quarantined + duplicates still holds, and the vault file says which de-identified outputs were held
back. (When the de-identification stage learns the list, it can record them itself and this step
finds nothing to remove.)
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Collection, Iterable
from pathlib import Path

from cohortpool.contract.csvio import formula_safe

VAULT_FOLDER = "withdrawn"
VAULT_COLUMNS = ("patient_id", "output_path")


def _owner(relative: str) -> str:
    """The patient of a de-identified output path (``dicom/<patient_id>/...``), else empty."""
    parts = relative.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "dicom" else ""


def withdrawn_outputs(outputs: Iterable[str], withdrawn: Collection[str]) -> list[tuple[str, str]]:
    """``(patient_id, output_path)`` of every output that belongs to a withdrawn patient, sorted."""
    return sorted((_owner(p), p) for p in outputs if _owner(p) in withdrawn)


def remove_withdrawn_dicom(
    out_dir: Path, vault_dir: Path, night: str, outputs: Iterable[str], withdrawn: Collection[str]
) -> list[str]:
    """Remove withdrawn patients' outputs from ``out_dir`` and list them in the vault; the removed
    relative paths (the vault file is written, possibly empty, whenever ``withdrawn`` is not empty)."""
    if not withdrawn:
        return []
    found = withdrawn_outputs(outputs, withdrawn)
    for _, relative in found:
        (out_dir / relative).unlink(missing_ok=True)
    for patient in sorted({p for p, _ in found}):
        folder = out_dir / "dicom" / patient
        for sub in sorted((d for d in folder.rglob("*") if d.is_dir()), reverse=True):
            if not any(sub.iterdir()):
                sub.rmdir()
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    _write_private(vault_dir / VAULT_FOLDER / f"{night}.csv", found)
    return [relative for _, relative in found]


def _write_private(path: Path, rows: list[tuple[str, str]]) -> None:
    for folder in (path.parent.parent, path.parent):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(VAULT_COLUMNS)
    writer.writerows([formula_safe(c) for c in row] for row in rows)
    text = buffer.getvalue()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return  # a second run of the night leaves the file alone
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    partial.replace(path)
