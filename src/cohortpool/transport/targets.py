"""Turn the ``DEST`` a user typed into something :class:`~cohortpool.transport.push.Pusher` can open."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cohortpool.transport.destination import Destination, LocalDestination
from cohortpool.transport.sftp import connect, is_sftp_url, parse_sftp_url


def describe(dest: str) -> str:
    """A stable name for ``dest`` (receipts record it): the normalised URL, or the absolute folder."""
    return str(parse_sftp_url(dest)) if is_sftp_url(dest) else str(Path(dest).absolute())


def opener(
    dest: str, known_hosts: list[Path] | None = None, identity: Path | None = None
) -> Callable[[], Destination]:
    """A function that opens ``dest`` (a folder, or ``sftp://user@host[:port]/path``) each time it is
    called: the pusher calls it again after a dropped connection. A malformed URL fails here, at once."""
    if is_sftp_url(dest):
        url = parse_sftp_url(dest)
        return lambda: connect(url, known_hosts, identity)
    folder = Path(dest)
    return lambda: LocalDestination(folder)
