"""What the hub knows about a submission before validating it: its site, night and content hash."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cohortpool.contract.files import sha256_tree
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

    @property
    def batch_id(self) -> str:
        """``<site_id>_<night>_<first 12 hex of the content sha256>`` (data contract section 3)."""
        return f"{self.site_id}_{self.night}_{self.content_sha256[:12]}"


def content_sha256(folder: Path) -> str:
    """The sha256 of a submission's content: every file but ``submission.json``, by relative path.

    Computed from the files themselves (not from the hashes ``submission.json`` lists), over the sorted
    lines ``<sha256>  <relative path>``, so the same content always gets the same batch id and a changed
    file always a new one.
    """
    relatives = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sha256_tree(folder, (r for r in relatives if r != MANIFEST))


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
    if not is_site_id(site_id):
        raise SubmissionError(f"{manifest}: site_id must be {SITE_ID_RULE}")
    if not NIGHT.match(night):
        raise SubmissionError(f"{manifest}: night must be an ISO date YYYY-MM-DD")
    return Submission(folder, site_id, night, content_sha256(folder))
