"""Package a submission: ``submission.json`` with the facts, and the sha256 and size of every file.

No timestamps and sorted keys, so the same inputs and secret give a byte-identical file. Given the
consortium secret, the file is sealed (``mac``: :mod:`cohortpool.contract.seal`), so the hub can tell a
submission edited after packaging, or made with another secret, from an intact one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cohortpool.contract.files import sha256_file
from cohortpool.contract.seal import canonical_bytes, sealed

SUBMISSION_FILE = "submission.json"


def _listed(out_dir: Path) -> list[str]:
    """Every file of the submission but ``submission.json`` and hidden top-level entries (staging),
    as sorted relative POSIX paths (``os.walk``: a submission holds thousands of files)."""
    found: list[str] = []
    for root, dirs, names in os.walk(out_dir):
        relative_root = os.path.relpath(root, out_dir)
        prefix = "" if relative_root == "." else relative_root.replace(os.sep, "/") + "/"
        if not prefix:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            names = [n for n in names if not n.startswith(".") and n != SUBMISSION_FILE]
        found.extend(prefix + name for name in names if Path(root, name).is_file())
    return sorted(found)


def package_submission(
    out_dir: Path,
    site_id: str,
    night: str,
    profile: dict[str, Any],
    counts: dict[str, Any],
    tool_version: str,
    known_sha256: dict[str, str] | None = None,
    privacy: dict[str, Any] | None = None,
    key_fingerprint: str | None = None,
    tables: dict[str, Any] | None = None,
    secret: bytes | None = None,
) -> Path:
    """Write ``out_dir/submission.json`` listing every other file under ``out_dir`` with its sha256
    (``files``) and its size in bytes (``file_sizes``).

    The sizes let the hub's ``receive`` and a resumed ``push`` tell a truncated or incomplete file from
    a complete one with one ``stat``, before hashing anything.

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
    key_fingerprint
        The consortium key's fingerprint (:func:`cohortpool.contract.keys.key_fingerprint`), recorded
        so the hub can refuse a submission keyed with another secret; omitted when not given.
    tables
        How the site tables were released (:meth:`cohortpool.features.tables.TableResult.submission_facts`:
        vocabularies and the counts of cells not released as sent; never a value).
    secret
        The consortium secret: seals the file (``mac``) so the hub can check it was neither edited after
        packaging nor made with another secret. The hub refuses an unsealed submission; only tests and
        tools that never deliver leave it out. Never written.
    """
    known = known_sha256 or {}
    files = {}
    sizes = {}
    for relative in _listed(out_dir):
        files[relative] = known.get(relative) or sha256_file(out_dir / relative)
        sizes[relative] = (out_dir / relative).stat().st_size
    document: dict[str, Any] = {
        "site_id": site_id,
        "night": night,
        "profile": profile,
        "counts": counts,
        "tool": {"name": "cohortpool", "version": tool_version},
        "files": files,
        "file_sizes": sizes,
    }
    if key_fingerprint is not None:
        document["key_fingerprint"] = key_fingerprint
    if privacy is not None:
        document["privacy"] = privacy
    if tables is not None:
        document["tables"] = tables
    if secret is not None:
        document = sealed(secret, document)
    path = out_dir / SUBMISSION_FILE
    # written beside and renamed into place: a crash or a full disk never leaves half a manifest that
    # the hub could take for a complete submission (the hidden name is not part of the listing)
    partial = out_dir / f".{SUBMISSION_FILE}.partial"
    partial.write_bytes(canonical_bytes(document))
    partial.replace(path)
    return path
