"""A site's queue of submissions to push: what is in the outbox and has no receipt for its content.

The outbox is the folder the site writes its submissions to, ``OUTBOX/<site>/<night>/`` (the nightly
run's ``OUT/submissions``). After a push completes, a receipt ``OUTBOX/.pushed/<site>/<night>.json``
records the sha256 of the ``submission.json`` it delivered and where to. A night is pending while it has
no receipt for its current ``submission.json`` and that destination: one that could not be pushed
(hub down, budget spent) stays pending and goes on the next run; a night rebuilt with changes is pending
again. Folders without ``submission.json`` (being written, or withheld) are not submissions yet.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cohortpool.transport.manifest import MANIFEST
from cohortpool.transport.push import PushResult

RECEIPTS = ".pushed"
_LOCK = ".lock"


class OutboxBusyError(RuntimeError):
    """Another push is working through the same outbox."""


def receipt_path(outbox: Path, site_id: str, night: str) -> Path:
    return outbox / RECEIPTS / site_id / f"{night}.json"


def pending(outbox: Path, destination: str) -> list[Path]:
    """Submission folders of ``outbox`` not yet pushed to ``destination`` as they are now, oldest
    night first."""
    found = []
    for manifest in outbox.glob(f"*/*/{MANIFEST}"):
        folder = manifest.parent
        site, night = folder.parent.name, folder.name
        if site.startswith(".") or night.startswith("."):
            continue
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
        if _delivered(receipt_path(outbox, site, night), digest, destination):
            continue
        found.append((night, site, folder))
    return [folder for _night, _site, folder in sorted(found)]


def _delivered(receipt: Path, digest: str, destination: str) -> bool:
    try:
        facts = json.loads(receipt.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(facts.get("submission_sha256") == digest and facts.get("destination") == destination)


def record(outbox: Path, result: PushResult, destination: str) -> Path:
    """Write the receipt of a completed push (written beside and renamed: never half a receipt)."""
    path = receipt_path(outbox, result.site_id, result.night)
    path.parent.mkdir(parents=True, exist_ok=True)
    facts = {
        "site_id": result.site_id,
        "night": result.night,
        "submission_sha256": result.submission_sha256,
        "destination": destination,
        "status": result.status,
        "pushed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


@contextlib.contextmanager
def locked(outbox: Path) -> Iterator[None]:
    """Hold the outbox for one push run; raise :class:`OutboxBusyError` if another run holds it (two runs
    pushing the same night at once would clear each other's partial files)."""
    folder = outbox / RECEIPTS
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutboxBusyError(f"{outbox}: another push is running on this outbox") from None
        yield
    finally:
        os.close(fd)
