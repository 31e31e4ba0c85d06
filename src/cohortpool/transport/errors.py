"""What can go wrong moving a submission, sorted by what the caller should do about it.

The CLI maps each class to an exit code: a configuration problem (:class:`DestinationError`,
:class:`HostKeyError`) is exit 2 and is never retried; a :class:`TransientError` is retried with backoff
until the time budget is spent; a :class:`SubmissionDamagedError` means the site's own copy no longer
matches its ``submission.json`` (exit 1: the site must rebuild that night).
"""

from __future__ import annotations


class TransportError(Exception):
    """Base class: a submission could not be moved."""


class DestinationError(TransportError):
    """The destination is misconfigured (bad URL, missing folder, permission denied, failed login)."""


class HostKeyError(DestinationError):
    """The SFTP server's host key is unknown or differs from the one in known_hosts: refused."""


class TransientError(TransportError):
    """The connection dropped, timed out or the far side failed a write: worth another try."""


class SubmissionDamagedError(TransportError):
    """The submission folder at the site does not match its own ``submission.json``."""
