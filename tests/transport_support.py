"""Helpers for the transport tests: small submissions made (and sealed) by the real packaging function,
a way to re-seal a ``submission.json`` a test edits on purpose, and a comparison of two folder trees byte
for byte."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cohortpool.contract.keys import key_fingerprint
from cohortpool.contract.seal import canonical_bytes, sealed
from cohortpool.features.package import package_submission

SECRET = b"ae05c8f24cba73ddb18c3eb4bd1d625f0e938012cace808d90db710b6c822f11"
FINGERPRINT = key_fingerprint(SECRET)
OTHER_SECRET = b"another-consortium-secret-entirely"
OTHER_FINGERPRINT = key_fingerprint(OTHER_SECRET)
PROFILE = {"edition": "DICOM PS3.15 2026c", "options": ["basic"], "allow_burned_in": False}


def make_submission(
    folder: Path,
    site: str = "site01",
    night: str = "2025-03-01",
    files: dict[str, bytes] | None = None,
    fingerprint: str | None = FINGERPRINT,
    secret: bytes | None = SECRET,
) -> Path:
    """Write ``files`` (relative path -> bytes) under ``folder`` and package them as a submission,
    sealed with ``secret`` (None: unsealed, as a tool that never delivers would leave it)."""
    if files is None:
        files = default_files()
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    package_submission(
        folder,
        site,
        night,
        PROFILE,
        {"input_files": len(files)},
        "0.1.0",
        key_fingerprint=fingerprint,
        secret=secret,
    )
    return folder


def edit_manifest(
    folder: Path, change: Callable[[dict[str, Any]], None], secret: bytes | None = SECRET
) -> dict[str, Any]:
    """Apply ``change`` to ``folder/submission.json`` and seal it again with ``secret`` (what a holder of
    the key could do; None: leave the old seal, as anyone else editing it would)."""
    path = folder / "submission.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    if secret is not None:
        document = sealed(secret, document)
    path.write_bytes(canonical_bytes(document))
    return document


def default_files(count: int = 6, size: int = 40_000, seed: int = 1) -> dict[str, bytes]:
    """A few tables and nested DICOM-like files of deterministic pseudo-random bytes."""
    files = {
        "clinical.csv": b"site_id,patient_id\nsite01,P0000000000000001\n",
        "reads.csv": b"site_id,patient_id,level\nsite01,P0000000000000001,L1\n",
    }
    for index in range(count):
        blob = hashlib.shake_256(f"{seed}-{index}".encode()).digest(size + index)
        files[f"dicom/P{index % 2}/1.2.{index % 3}/1.2.3.{index}.dcm"] = blob
    return files


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256), links and hidden files included."""
    found = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            found[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found
