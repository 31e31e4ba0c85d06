"""Transport: move a submission from a site to the hub's inbox, and admit it there only when intact.

Site side: :class:`Pusher` (or :func:`push_submission` for one attempt) writes a submission to a folder
or an SFTP server so the hub sees all of it or nothing, resuming and retrying; :mod:`.outbox` keeps the
queue of nights still to push. Hub side: :func:`receive` checks every arrival against the registry of
declared sites and against its own ``submission.json`` and files it under ``OUT/submissions`` or
``OUT/rejected`` with the reason. Nothing here reads settings or imports Prefect: the caller passes the
registry and announces admitted submissions (``cohortpool receive`` emits the Prefect event).
"""

from cohortpool.transport.destination import Destination, LocalDestination
from cohortpool.transport.errors import (
    DestinationError,
    HostKeyError,
    SubmissionDamagedError,
    TransientError,
    TransportError,
)
from cohortpool.transport.manifest import Listing, ManifestError, read_listing
from cohortpool.transport.outbox import OutboxBusyError
from cohortpool.transport.push import Pusher, PushResult, push_submission
from cohortpool.transport.receive import Arrival, check_submission, receive, refuse
from cohortpool.transport.targets import describe, opener
from cohortpool.transport.verify import Problem, check_folder

__all__ = [
    "Arrival",
    "Destination",
    "DestinationError",
    "HostKeyError",
    "Listing",
    "LocalDestination",
    "ManifestError",
    "OutboxBusyError",
    "Problem",
    "PushResult",
    "Pusher",
    "SubmissionDamagedError",
    "TransientError",
    "TransportError",
    "check_folder",
    "check_submission",
    "describe",
    "opener",
    "push_submission",
    "read_listing",
    "receive",
    "refuse",
]
