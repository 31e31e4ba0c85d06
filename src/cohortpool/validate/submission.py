"""What the hub knows about a submission before validating it: its site, night and content hash."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohortpool.contract.files import sha256_file, sha256_listing, tree_order
from cohortpool.contract.identifiers import NIGHT, SITE_ID_RULE, is_site_id

MANIFEST = "submission.json"
#: what a site writes instead of submission.json when its release is blocked (data contract section 2)
WITHHELD = "release_blocked.json"


class SubmissionError(ValueError):
    """The folder is not a usable submission (bad usage: exit code 2)."""


@dataclass(frozen=True)
class Submission:
    """A submission folder (data contract section 2) and its identity."""

    path: Path
    site_id: str
    night: str
    content_sha256: str
    #: file -> how it disagrees with what ``submission.json`` lists (changed after packaging)
    changed: dict[str, str] = field(default_factory=dict)
    #: file -> its sha256, as found
    hashes: dict[str, str] = field(default_factory=dict)

    @property
    def batch_id(self) -> str:
        """``<site_id>_<night>_<first 12 hex of the content sha256>`` (data contract section 3)."""
        return f"{self.site_id}_{self.night}_{self.content_sha256[:12]}"


def file_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of every file of a submission but ``submission.json``, by relative path."""
    relatives = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return {r: sha256_file(folder / r) for r in relatives if r != MANIFEST}


def content_sha256(folder: Path, hashes: dict[str, str] | None = None) -> str:
    """The sha256 of a submission's content: every file but ``submission.json``, by relative path.

    Computed from the files themselves (not from the hashes ``submission.json`` lists), over the sorted
    lines ``<sha256>  <relative path>``, so the same content always gets the same batch id and a changed
    file always a new one.
    """
    hashes = file_hashes(folder) if hashes is None else hashes
    return sha256_listing((r, hashes[r]) for r in sorted(hashes, key=tree_order))


def changed_files(meta: dict[str, Any], hashes: dict[str, str]) -> dict[str, str]:
    """Files whose bytes are not the ones ``submission.json`` lists (edited, added or removed since the
    site packaged the night), with what is wrong. The transport checks this on arrival; ``validate``
    checks it again, because a folder can reach it by other ways (copied by hand, run standalone)."""
    listed = meta.get("files")
    if not isinstance(listed, dict):
        return {MANIFEST: "lists no files (no `files` object)"}
    changed = {}
    for relative, digest in sorted(hashes.items()):
        if relative not in listed:
            changed[relative] = "is not listed in submission.json"
        elif listed[relative] != digest:
            changed[relative] = "does not have the sha256 submission.json lists"
    for relative in sorted(set(map(str, listed)) - set(hashes)):
        changed[relative] = "is listed in submission.json but missing"
    return changed


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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SubmissionError(f"{manifest}: not readable JSON ({exc}); re-run `cohortpool deid`") from exc
    site_id = str(meta.get("site_id", "")) if isinstance(meta, dict) else ""
    night = str(meta.get("night", "")) if isinstance(meta, dict) else ""
    if not is_site_id(site_id):
        raise SubmissionError(f"{manifest}: site_id must be {SITE_ID_RULE}")
    if not NIGHT.match(night):
        raise SubmissionError(f"{manifest}: night must be an ISO date YYYY-MM-DD")
    hashes = file_hashes(folder)
    changed = changed_files(meta, hashes)
    return Submission(folder, site_id, night, content_sha256(folder, hashes), changed, hashes)
