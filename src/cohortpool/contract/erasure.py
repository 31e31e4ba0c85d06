"""The hub's record of what it erased from a folder for withdrawn patients: ``erasure.json``.

When a patient withdraws, the hub rewrites or removes the files of its own stores that hold their values
(data contract section 4, "Withdrawal"). Those files then no longer match what vouched for them: a
submission's ``submission.json`` (the site's seal covers it, so the hub cannot rewrite it) and the file
checksums a load recorded in ``raw.batch_files``. Rather than forget what was vouched for, the hub writes
this record beside the files: for each file it rewrote or removed, the sha256 and size it had before the
first erasure and the ones it has now. Verification and the load's "loaded once" check read a file that
matches the record's *now* as the file it was *before*, so an erased folder is still the version that was
checked and loaded, and any other change is still caught.

The record is tied to the folder's version (``basis``: the sha256 of ``submission.json`` or
``summary.json``): a folder replaced by a new version never inherits an old record. It holds only what
the contract lets the hub keep of a withdrawn patient: pseudonyms, the site, the night, and counts. It is
written deterministically (sorted keys, no times), so the same erasure gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: the record's name in a folder the hub rewrote (never a name a submission or batch uses)
ERASURE_FILE = "erasure.json"


@dataclass(frozen=True)
class ErasedFile:
    """One file the hub rewrote (``sha256``/``size`` now) or removed (``sha256`` None)."""

    before_sha256: str
    before_size: int
    sha256: str | None
    size: int | None
    #: rows (tables), lines (quarantine and warnings) or mentions (pages) erased, over every erasure
    erased: int = 0

    @property
    def removed(self) -> bool:
        return self.sha256 is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "before_sha256": self.before_sha256,
            "before_size": self.before_size,
            "sha256": self.sha256,
            "size": self.size,
            "erased": self.erased,
        }


@dataclass(frozen=True)
class ErasureRecord:
    """``erasure.json``: which patients' values left the folder, and what became of each file."""

    #: the file naming the folder's version (``submission.json`` or ``summary.json``) and its sha256
    basis_file: str
    basis_sha256: str
    site_id: str
    night: str
    #: the site's withdrawn patients (pseudonyms, sorted) the folder was erased for
    patients: tuple[str, ...]
    files: Mapping[str, ErasedFile] = field(default_factory=dict)

    def as_was(self, relpath: str, sha256: str, size: int) -> tuple[str, int]:
        """The (sha256, size) ``relpath`` had before the hub erased from it, when (``sha256``, ``size``)
        is what the hub made of it; else the values given (a file the hub did not touch, or changed
        since by someone else)."""
        entry = self.files.get(relpath)
        if entry is None or entry.removed or (entry.sha256, entry.size) != (sha256, size):
            return sha256, size
        return entry.before_sha256, entry.before_size

    def as_dict(self) -> dict[str, Any]:
        return {
            "basis": {"file": self.basis_file, "sha256": self.basis_sha256},
            "site_id": self.site_id,
            "night": self.night,
            "patients": list(self.patients),
            "files": {path: self.files[path].as_dict() for path in sorted(self.files)},
            "note": (
                "values of withdrawn patients erased by the hub (docs/data_contract.md section 4, "
                "Withdrawal); before_* are the file as received or validated"
            ),
        }


def _erased_file(value: Any) -> ErasedFile | None:
    if not isinstance(value, dict):
        return None
    before, before_size = value.get("before_sha256"), value.get("before_size")
    sha256, size, erased = value.get("sha256"), value.get("size"), value.get("erased", 0)
    if not isinstance(before, str) or not isinstance(before_size, int) or not isinstance(erased, int):
        return None
    if (sha256 is None) != (size is None) or (sha256 is not None and not isinstance(sha256, str)):
        return None
    if size is not None and not isinstance(size, int):
        return None
    return ErasedFile(before, before_size, sha256, size, erased)


def read_record(folder: Path, basis_sha256: str | None = None) -> ErasureRecord | None:
    """The folder's ``erasure.json``; None when there is none, it cannot be read, or (``basis_sha256``
    given) it describes another version of the folder. A record that cannot be trusted explains
    nothing: the files are then checked as they are."""
    path = folder / ERASURE_FILE
    try:
        if path.is_symlink() or not path.is_file():
            return None
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    basis = document.get("basis")
    files = document.get("files")
    patients = document.get("patients")
    if not isinstance(basis, dict) or not isinstance(files, dict) or not isinstance(patients, list):
        return None
    entries = {str(p): _erased_file(v) for p, v in files.items()}
    if any(e is None for e in entries.values()) or not isinstance(basis.get("sha256"), str):
        return None
    record = ErasureRecord(
        str(basis.get("file")),
        str(basis["sha256"]),
        str(document.get("site_id")),
        str(document.get("night")),
        tuple(sorted(str(p) for p in patients)),
        {p: e for p, e in entries.items() if e is not None},
    )
    if basis_sha256 is not None and record.basis_sha256 != basis_sha256:
        return None
    return record


def write_record(folder: Path, record: ErasureRecord) -> None:
    """Write ``erasure.json`` atomically (a hidden partial file renamed over it)."""
    text = json.dumps(record.as_dict(), indent=2, sort_keys=True) + "\n"
    partial = folder / f".{ERASURE_FILE}.partial"
    partial.write_text(text, encoding="utf-8")
    partial.replace(folder / ERASURE_FILE)
