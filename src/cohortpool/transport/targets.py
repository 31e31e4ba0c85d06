"""Turn the ``DEST`` a user typed into something :class:`~cohortpool.transport.push.Pusher` can open.

paramiko (with cryptography and invoke, about half a second of CPU to import) is loaded only for an
``sftp://`` destination: a push to a folder and the hub's ``receive`` never need it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cohortpool.transport.destination import Destination, LocalDestination

SFTP_SCHEME = "sftp://"


def is_sftp_url(text: str) -> bool:
    return text.startswith(SFTP_SCHEME)


def describe(dest: str) -> str:
    """A stable name for ``dest`` (receipts record it): the normalised URL, or the absolute folder."""
    if is_sftp_url(dest):
        from cohortpool.transport.sftp import parse_sftp_url

        return str(parse_sftp_url(dest))
    return str(Path(dest).absolute())


def opener(
    dest: str, known_hosts: list[Path] | None = None, identity: Path | None = None
) -> Callable[[], Destination]:
    """A function that opens ``dest`` (a folder, or ``sftp://user@host[:port]/path``) each time it is
    called: the pusher calls it again after a dropped connection. A malformed URL fails here, at once."""
    if is_sftp_url(dest):
        from cohortpool.transport.sftp import connect, parse_sftp_url

        url = parse_sftp_url(dest)
        return lambda: connect(url, known_hosts, identity)
    folder = Path(dest)
    return lambda: LocalDestination(folder)
