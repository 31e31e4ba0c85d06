"""What the hub knows about a submission before validating it: its site, night and content hash."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "submission.json"
#: what a site writes instead of submission.json when its release is blocked (data contract section 2)
WITHHELD = "release_blocked.json"
_SITE_ID = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_NIGHT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_CHUNK = 1 << 20


class SubmissionError(ValueError):
    """The folder is not a usable submission (bad usage: exit code 2)."""


@dataclass(frozen=True)
class Submission:
    """A submission folder (data contract section 2) and its identity."""

    path: Path
    site_id: str
    night: str
    content_sha256: str

    @property
    def batch_id(self) -> str:
        """``<site_id>_<night>_<first 12 hex of the content sha256>`` (data contract section 3)."""
        return f"{self.site_id}_{self.night}_{self.content_sha256[:12]}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_sha256(folder: Path) -> str:
    """The sha256 of a submission's content: every file but ``submission.json``, by relative path.

    Computed from the files themselves (not from the hashes ``submission.json`` lists), over the sorted
    lines ``<sha256>  <relative path>``, so the same content always gets the same batch id and a changed
    file always a new one.
    """
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative == MANIFEST:
            continue
        lines.append(f"{file_sha256(path)}  {relative}\n")
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def open_submission(folder: Path) -> Submission:
    """Read ``submission.json``; raise :class:`SubmissionError` saying what is wrong and what to do."""
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: not a directory; pass the folder `cohortpool deid` wrote")
    manifest = folder / MANIFEST
    if not manifest.is_file() and (folder / WITHHELD).is_file():
        raise SubmissionError(
            f"{folder}: the site withheld this submission ({WITHHELD}: k-anonymity below the minimum); "
            "there is nothing to validate until the site releases it"
        )
    if not manifest.is_file():
        raise SubmissionError(
            f"{manifest}: missing; a submission is the output folder of `cohortpool deid` "
            "(data contract section 2)"
        )
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubmissionError(f"{manifest}: not readable JSON ({exc}); re-run `cohortpool deid`") from exc
    site_id = str(meta.get("site_id", "")) if isinstance(meta, dict) else ""
    night = str(meta.get("night", "")) if isinstance(meta, dict) else ""
    if not _SITE_ID.match(site_id):
        raise SubmissionError(f"{manifest}: site_id must be 2-32 characters of a-z, 0-9 and _")
    if not _NIGHT.match(night):
        raise SubmissionError(f"{manifest}: night must be an ISO date YYYY-MM-DD")
    return Submission(folder, site_id, night, content_sha256(folder))
