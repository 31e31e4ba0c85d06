"""Push one submission so that the hub sees all of it or nothing.

Layout at the destination (``DEST`` is a folder or the SFTP account's folder)::

    DEST/.incoming/<site>-<night>.partial/   files arrive here, each under a hidden temporary name and
                                              renamed when complete; submission.json last
    DEST/.incoming/<site>-<night>.json        the submission.json the partial folder is being built from
    DEST/<site>/<night>/                      one rename of the complete partial folder

Resuming: a file under its final name in the partial folder was renamed only after all its bytes were
written, acknowledged and hashed to the sha256 ``submission.json`` lists, so when the journal
(``.json``) lists the same sha256 and size for it, it is complete and is not sent again. Anything else
in the partial folder (temporary names, files of another version) is removed *before* the journal is
rewritten, so the journal never vouches for a file it did not see complete.

Idempotent: when ``DEST/<site>/<night>/submission.json`` has the same bytes as the site's (it lists
every file's sha256), nothing is sent. A changed re-delivery is built beside the old one and swapped in:
the old folder is renamed away, the new one renamed in, the old one removed. The hub sees the old
submission whole, then for an instant none, then the new one whole; never a mixture.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cohortpool.transport.destination import Destination
from cohortpool.transport.errors import TransientError
from cohortpool.transport.manifest import (
    MANIFEST,
    ListedFile,
    Listing,
    ManifestError,
    parse_listing,
    read_listing,
)

INCOMING = ".incoming"
#: suffix of the temporary name a file is written under (hidden: ``.<name>.cohortpool-part``)
TEMP_SUFFIX = ".cohortpool-part"
#: seconds of the first wait after a failed attempt; doubled each time, at most MAX_DELAY
FIRST_DELAY = 1.0
MAX_DELAY = 60.0


@dataclass(frozen=True)
class PushResult:
    """What one push did."""

    site_id: str
    night: str
    #: ``delivered`` (new), ``replaced`` (a different version was there), ``unchanged`` (already there)
    status: str
    files_sent: int
    #: files found complete in the partial folder of an interrupted push
    files_resumed: int
    bytes_sent: int
    #: sha256 of submission.json: the content key (receipts and the hub's event carry it)
    submission_sha256: str


def paths_for(listing: Listing) -> tuple[str, str, str, str]:
    """(final folder, partial folder, journal, parking place of a replaced version) at the destination."""
    stem = f"{INCOMING}/{listing.site_id}-{listing.night}"
    return f"{listing.site_id}/{listing.night}", f"{stem}.partial", f"{stem}.json", f"{stem}.replaced"


def temp_name(path: str) -> str:
    """The hidden name ``path`` is written under before it is renamed into place."""
    folder, _, name = path.rpartition("/")
    return f"{folder}/.{name}{TEMP_SUFFIX}" if folder else f".{name}{TEMP_SUFFIX}"


def push_submission(
    submission: Path, destination: Destination, on_bytes: Callable[[int], None] | None = None
) -> PushResult:
    """Push the submission folder ``submission`` (it holds ``submission.json``) to ``destination``.

    Raises
    ------
    ManifestError
        ``submission.json`` is missing or malformed: this is not a submission.
    SubmissionDamagedError
        A file at the site no longer matches ``submission.json`` (nothing of it reached the hub's view).
    TransientError, DestinationError
        From the destination (see :mod:`cohortpool.transport.errors`).
    """
    listing = read_listing(submission)
    report = on_bytes or (lambda _n: None)
    final, partial, journal, replaced = paths_for(listing)
    if destination.read_bytes(f"{final}/{MANIFEST}") == listing.raw:
        for leftover in (partial, journal, replaced):
            destination.remove_tree(leftover)
        report(sum(max(0, _size(submission, f)) for f in listing.files.values()))
        return PushResult(listing.site_id, listing.night, "unchanged", 0, 0, 0, listing.sha256)

    destination.makedirs(INCOMING)
    complete = _resume(submission, destination, listing, partial, journal)
    report(sum(max(0, _size(submission, f)) for f in listing.files.values() if f.path in complete))
    sent = 0
    made = {""} | {folder for p in complete for folder in _ancestors(p)}
    to_send = [f for f in listing.files.values() if f.path not in complete]
    for listed in to_send:
        _make_parents(destination, partial, listed.path, made)
        sent += _send(submission, destination, partial, listed, report)
    destination.write_bytes(f"{partial}/{temp_name(MANIFEST)}", listing.raw)
    destination.replace(f"{partial}/{temp_name(MANIFEST)}", f"{partial}/{MANIFEST}")

    status = "delivered"
    destination.makedirs(listing.site_id)
    if destination.exists(final):
        destination.remove_tree(replaced)
        try:
            destination.rename_dir(final, replaced)
            status = "replaced"
        except FileNotFoundError:  # the hub took the old version meanwhile
            pass
    destination.rename_dir(partial, final)
    destination.remove_tree(replaced)
    destination.remove_tree(journal)
    return PushResult(
        listing.site_id, listing.night, status, len(to_send), len(complete), sent, listing.sha256
    )


def _size(submission: Path, listed: ListedFile) -> int:
    """The listed size, else the site file's (-1 when it is gone: never equal to a real size; sending it
    then refuses the submission with the reason)."""
    if listed.size is not None:
        return listed.size
    try:
        return (submission / listed.path).stat().st_size
    except OSError:
        return -1


def _ancestors(path: str) -> list[str]:
    """The folders above a relative path: ``a/b/c.dcm`` -> ``a``, ``a/b``."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _resume(
    submission: Path, destination: Destination, listing: Listing, partial: str, journal: str
) -> set[str]:
    """Keep the files of an interrupted push that are complete and still wanted; clear the rest, then
    point the journal at this ``submission.json``. Returns the relative paths kept."""
    present = destination.files_under(partial)
    previous_raw = destination.read_bytes(journal)
    previous: Listing | None = None
    if previous_raw is not None:
        try:
            previous = parse_listing(previous_raw)
        except ManifestError:
            previous = None
    kept: set[str] = set()
    if present is None:
        destination.makedirs(partial)
    elif previous is None:
        destination.remove_tree(partial)  # nothing vouches for what is there
        destination.makedirs(partial)
    else:
        for path, size in present.items():
            wanted, before = listing.files.get(path), previous.files.get(path)
            if (
                wanted is not None
                and before is not None
                and before.sha256 == wanted.sha256
                and size == _size(submission, wanted)
            ):
                kept.add(path)
            else:
                destination.remove_tree(f"{partial}/{path}")
    if previous_raw != listing.raw:
        destination.write_bytes(temp_name(journal), listing.raw)
        destination.replace(temp_name(journal), journal)
    return kept


def _make_parents(destination: Destination, partial: str, path: str, made: set[str]) -> None:
    folder = path.rpartition("/")[0]
    missing: list[str] = []
    while folder not in made:
        missing.append(folder)
        folder = folder.rpartition("/")[0]
    for folder in reversed(missing):
        destination.mkdir(f"{partial}/{folder}")
        made.add(folder)


def _send(
    submission: Path,
    destination: Destination,
    partial: str,
    listed: ListedFile,
    report: Callable[[int], None],
) -> int:
    """Upload one file under its temporary name, then rename it; returns the bytes sent."""
    sent = 0

    def counted(count: int) -> None:
        nonlocal sent
        sent += count
        report(count)

    try:
        destination.upload(submission / listed.path, f"{partial}/{temp_name(listed.path)}", listed, counted)
    except BaseException:
        report(-sent)  # the progress shown goes back to what is really there
        raise
    destination.replace(f"{partial}/{temp_name(listed.path)}", f"{partial}/{listed.path}")
    return sent


class Pusher:
    """Pushes submissions over one connection, reconnecting and resuming after a transient failure,
    with waits of 1, 2, 4, ... 60 s, until ``budget_seconds`` since it was made are spent.

    The budget bounds retrying, not transferring: a push under way when it runs out is finished; no new
    attempt starts after it.
    """

    def __init__(
        self,
        open_destination: Callable[[], Destination],
        budget_seconds: float,
        on_retry: Callable[[TransientError, float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = open_destination
        self._on_retry = on_retry
        self._sleep = sleep
        self._clock = clock
        self.deadline = clock() + budget_seconds
        self._destination: Destination | None = None

    @property
    def out_of_time(self) -> bool:
        return self._clock() >= self.deadline

    def push(self, submission: Path, on_bytes: Callable[[int], None] | None = None) -> PushResult:
        """:func:`push_submission` with reconnects; raises the last :class:`TransientError` when the
        budget is spent."""
        delay = FIRST_DELAY
        while True:
            try:
                if self._destination is None:
                    self._destination = self._open()
                return push_submission(submission, self._destination, on_bytes)
            except TransientError as exc:
                self.close()
                remaining = self.deadline - self._clock()
                if remaining <= 0:
                    raise
                wait = min(delay, remaining)
                if self._on_retry is not None:
                    self._on_retry(exc, wait)
                self._sleep(wait)
                delay = min(delay * 2, MAX_DELAY)

    def close(self) -> None:
        if self._destination is not None:
            destination, self._destination = self._destination, None
            destination.close()
