"""Check a submission folder against its ``submission.json``: every listed file, nothing else.

One pass over each file: sizes come from one ``lstat`` per entry (a truncated file is caught without
reading it), and each file of the right size is read once and hashed (the contract's streaming
:func:`~cohortpool.contract.files.sha256_file`). Files are hashed on a few threads: hashlib releases the
GIL while it hashes a block, so two idle cores hash about twice as fast as one. Symbolic links, pipes and
devices are refused, never followed: a link planted in an SFTP inbox would otherwise make the hub read
(and pass on) a file outside the submission. ``receive`` checks folders it has moved out of the inbox,
where no site can swap a file for a link between this walk and the hashing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cohortpool.contract.erasure import ERASURE_FILE, ErasureRecord
from cohortpool.contract.files import sha256_file
from cohortpool.transport.manifest import MANIFEST, ListedFile, Listing

#: hashing threads (the hub's disks and 2+ cores keep this many busy)
WORKERS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class Problem:
    """Why a submission is refused: the check that failed, the file (or key) at fault, how, and what to
    do about it (``action``: filled in by ``receive``, which knows the site and the night)."""

    check: str
    file: str | None
    detail: str
    action: str | None = None

    def __str__(self) -> str:
        return f"{self.file}: {self.detail}" if self.file else self.detail

    def as_dict(self) -> dict[str, str | None]:
        return {"check": self.check, "file": self.file, "detail": self.detail, "action": self.action}


def inventory(folder: Path) -> tuple[dict[str, int], list[Problem]]:
    """Every regular file under ``folder`` (relative POSIX path -> size), and every other entry as a
    :class:`Problem` (links and special files are not followed or opened)."""
    found: dict[str, int] = {}
    problems: list[Problem] = []
    pending = [(os.fspath(folder), "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                relative = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, relative + "/"))
                elif entry.is_file(follow_symlinks=False):
                    found[relative] = entry.stat(follow_symlinks=False).st_size
                else:
                    problems.append(
                        Problem("not_regular", relative, "not a regular file (link, pipe or device)")
                    )
    return found, problems


def check_folder(
    folder: Path,
    listing: Listing,
    on_bytes: Callable[[int], None] | None = None,
    workers: int = WORKERS,
    erasure: ErasureRecord | None = None,
) -> list[Problem]:
    """Everything wrong with ``folder`` against ``listing`` (empty: intact), sorted by file;
    ``on_bytes`` is called with each file's size once it is hashed.

    Missing, truncated or grown files and unlisted or non-regular entries are found from the directory
    walk; every listed file of the right size is then hashed, on ``workers`` threads.

    ``erasure`` is the hub's own record of what it erased from this version of the folder for withdrawn
    patients (:mod:`cohortpool.contract.erasure`), given only for a folder the hub already holds, never
    at the door: a file it removed is not missing, a file it rewrote passes when it is exactly what the
    hub made of the listed file, and the record itself is not an unlisted file.
    """
    found, problems = inventory(folder)
    erased = erasure.files if erasure is not None else {}
    to_hash: list[ListedFile] = []
    rewritten: dict[str, ListedFile] = {}
    for path, listed in listing.files.items():
        size = found.get(path)
        entry = erased.get(path)
        if entry is not None and entry.before_sha256 == listed.sha256:
            if entry.removed and size is None:
                continue  # removed by the hub with the withdrawn patient's other files
            if not entry.removed and size == entry.size:
                # hashed against what the hub wrote; the record vouches for the listed original
                rewritten[path] = ListedFile(path, entry.sha256 or "", entry.size)
                continue
        if size is None:
            if not any(p.file == path for p in problems):
                problems.append(Problem("missing", path, "listed in submission.json but not there"))
        elif listed.size is not None and size != listed.size:
            problems.append(Problem("size", path, f"{size} bytes, submission.json lists {listed.size}"))
        else:
            to_hash.append(listed)
    ignored = {MANIFEST, ERASURE_FILE} if erasure is not None else {MANIFEST}
    for path in sorted(set(found) - set(listing.files) - ignored):
        problems.append(Problem("unlisted", path, "not listed in submission.json"))
    to_hash.extend(rewritten.values())

    def check(listed: ListedFile) -> Problem | None:
        try:
            digest = sha256_file(folder / listed.path)
        except OSError as exc:
            return Problem("unreadable", listed.path, f"cannot be read ({exc.strerror or exc})")
        if on_bytes is not None:
            on_bytes(found[listed.path])
        if listed.path in rewritten and digest != listed.sha256:
            return Problem(
                "sha256",
                listed.path,
                f"sha256 {digest[:12]}..., neither what submission.json lists nor what the hub's erasure "
                f"left ({listed.sha256[:12]}..., {ERASURE_FILE})",
            )
        if digest != listed.sha256:
            return Problem(
                "sha256",
                listed.path,
                f"sha256 {digest[:12]}..., submission.json lists {listed.sha256[:12]}...",
            )
        return None

    # largest first, so one big file does not run alone at the end
    to_hash.sort(key=lambda f: -(found[f.path]))
    problems.extend(p for p in _map(check, to_hash, workers) if p is not None)
    return sorted(problems, key=lambda p: (p.file or "", p.check))


def _map(
    function: Callable[[ListedFile], Problem | None], items: list[ListedFile], workers: int
) -> Iterator[Problem | None]:
    if workers <= 1 or len(items) <= 1:
        return map(function, items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        return iter(list(pool.map(function, items)))
