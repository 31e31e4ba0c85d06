"""What ``submission.json`` promises about its folder, read defensively.

Both ends read it: ``push`` to know what to send and to check the site's copy while sending it,
``receive`` to check what arrived. At the hub the file comes from outside, so every listed path is
checked to stay inside the submission (no absolute paths, no ``..``) before anything is opened, and the
file itself is size-capped before it is parsed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cohortpool.contract.identifiers import SITE_ID_RULE, is_night, is_site_id
from cohortpool.contract.seal import MAC_FIELD, seal_matches

MANIFEST = "submission.json"
#: a submission of 10^6 files lists them in about 150 MB; anything larger is not one of ours
MAX_MANIFEST_BYTES = 256 * 2**20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ValueError):
    """``submission.json`` is missing, unreadable or does not describe a submission."""


@dataclass(frozen=True)
class ListedFile:
    """One file as ``submission.json`` lists it (size None: written by a cohortpool without sizes)."""

    path: str
    sha256: str
    size: int | None


@dataclass(frozen=True)
class Listing:
    """A parsed ``submission.json``: identity, key fingerprint and the files it vouches for."""

    site_id: str
    night: str
    key_fingerprint: str | None
    files: Mapping[str, ListedFile]
    #: the file's bytes: two listings are the same submission exactly when these are equal
    raw: bytes

    @property
    def sha256(self) -> str:
        """The sha256 of ``submission.json`` itself, which names every file's sha256: a content key."""
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def name(self) -> str:
        """``<site>/<night>``, as printed and as laid out in an inbox."""
        return f"{self.site_id}/{self.night}"

    @property
    def sealed(self) -> bool:
        """``submission.json`` carries a seal (``mac``), right or wrong."""
        return MAC_FIELD in json.loads(self.raw)

    def seal_matches(self, secret: bytes) -> bool:
        """The seal is the one the consortium ``secret`` gives this ``submission.json``
        (:mod:`cohortpool.contract.seal`): not edited since it was packaged, and made with that secret."""
        return seal_matches(secret, json.loads(self.raw))


def safe_relative(path: str) -> bool:
    """True when ``path`` is a relative POSIX path that stays inside its folder."""
    if not path or path.startswith("/") or "\x00" in path or "\\" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def read_listing(folder: Path) -> Listing:
    """Read and check ``folder/submission.json``; raise :class:`ManifestError` saying what is wrong."""
    path = folder / MANIFEST
    try:
        if path.is_symlink() or not path.is_file():
            raise ManifestError(f"{MANIFEST}: missing (or not a regular file)")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{MANIFEST}: larger than {MAX_MANIFEST_BYTES // 2**20} MiB")
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{MANIFEST}: cannot be read ({exc.strerror or exc})") from exc
    return parse_listing(raw)


def parse_listing(raw: bytes) -> Listing:
    """Parse the bytes of a ``submission.json``; raise :class:`ManifestError` naming the fault."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ManifestError(f"{MANIFEST}: not UTF-8 JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise ManifestError(f"{MANIFEST}: not a JSON object")
    site_id, night = document.get("site_id"), document.get("night")
    if not isinstance(site_id, str) or not is_site_id(site_id):
        raise ManifestError(f"{MANIFEST}: site_id must be {SITE_ID_RULE}")
    if not isinstance(night, str) or not is_night(night):
        raise ManifestError(f"{MANIFEST}: night must be a date YYYY-MM-DD")
    fingerprint = document.get("key_fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise ManifestError(f"{MANIFEST}: key_fingerprint must be a string")
    if MAC_FIELD in document and not isinstance(document[MAC_FIELD], str):
        raise ManifestError(f"{MANIFEST}: {MAC_FIELD} must be a string")
    return Listing(site_id, night, fingerprint, _files(document), raw)


def _files(document: dict[str, Any]) -> dict[str, ListedFile]:
    digests, sizes = document.get("files"), document.get("file_sizes", {})
    if not isinstance(digests, dict) or not isinstance(sizes, dict):
        raise ManifestError(f"{MANIFEST}: files and file_sizes must be objects keyed by relative path")
    listed: dict[str, ListedFile] = {}
    for path in sorted(digests):
        digest, size = digests[path], sizes.get(path)
        if not safe_relative(path) or path == MANIFEST:
            raise ManifestError(f"{MANIFEST}: lists {path!r}, which is not a relative path inside the folder")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ManifestError(f"{MANIFEST}: {path}: sha256 must be 64 lower-case hex characters")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise ManifestError(f"{MANIFEST}: {path}: file_sizes entry must be a byte count")
        listed[path] = ListedFile(path, digest, size)
    unknown = sorted(set(sizes) - set(digests))
    if unknown:
        raise ManifestError(f"{MANIFEST}: file_sizes names {unknown[0]!r}, which files does not list")
    return listed
