"""File and tree digests: how every stage names content.

The site lists a sha256 per file in ``submission.json``, the hub recomputes it on arrival, batch ids and
night checksums derive from it. One streaming implementation (``hashlib.file_digest``: no whole file in
memory, the buffer handled in C) and one tree format, the one ``sha256sum`` prints, so an operator can
check any listing with coreutils.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, streamed."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_listing(entries: Iterable[tuple[str, str]]) -> str:
    """The sha256 of ``<sha256>  <relative path>`` lines (``sha256sum``'s format), in the order given.

    ``entries`` are (relative POSIX path, file sha256) pairs; callers sort them. Paths that are not
    UTF-8 (a hospital's file system may hold any bytes) are encoded back to their original bytes.
    """
    digest = hashlib.sha256()
    for relative, file_digest in entries:
        digest.update(f"{file_digest}  {relative}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def tree_order(relative: str) -> list[str]:
    """Sort key of a relative POSIX path: folder by folder (``a/b`` before ``a-c``, ``1.2/x`` before
    ``1.2.3/y``), the order of :class:`pathlib.PurePosixPath`."""
    return relative.split("/")


def sha256_tree(root: Path, relatives: Iterable[str]) -> str:
    """:func:`sha256_listing` of the files ``relatives`` (relative POSIX paths) under ``root``, in
    :func:`tree_order`."""
    return sha256_listing((rel, sha256_file(root / rel)) for rel in sorted(relatives, key=tree_order))
