"""Package a submission: ``submission.json`` with the facts and the sha256 of every file.

No timestamps and sorted keys, so the same inputs and secret give a byte-identical file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

SUBMISSION_FILE = "submission.json"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_submission(
    out_dir: Path,
    site_id: str,
    night: str,
    profile: dict[str, Any],
    counts: dict[str, Any],
    tool_version: str,
    known_sha256: dict[str, str] | None = None,
    privacy: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/submission.json`` listing every other file under ``out_dir`` with its sha256.

    Parameters
    ----------
    profile
        ``edition``, ``options`` and ``allow_burned_in`` of the de-identification.
    counts
        Input files, de-identified, quarantined, duplicates, series and table rows.
    known_sha256
        Digests already taken while writing (the de-identification workers hash each output in
        parallel), keyed by relative path; every other file is hashed here.
    privacy
        The re-identification risk report (:meth:`cohortpool.features.kanon.KAnonymity.as_dict`).
    """
    known = known_sha256 or {}
    files = {}
    for path in sorted(out_dir.rglob("*")):
        relative = path.relative_to(out_dir).as_posix()
        if path.is_file() and path.name != SUBMISSION_FILE and not relative.startswith("."):
            files[relative] = known.get(relative) or sha256_file(path)
    document = {
        "site_id": site_id,
        "night": night,
        "profile": profile,
        "counts": counts,
        "tool": {"name": "cohortpool", "version": tool_version},
        "files": files,
    }
    if privacy is not None:
        document["privacy"] = privacy
    path = out_dir / SUBMISSION_FILE
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
