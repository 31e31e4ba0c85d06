"""What one C-STORE association may cost the site, and what it did: limits, counters, a summary line.

A sender the listener trusts by AE title can still be broken or misconfigured: a modality that streams
a 40 GB "instance", a PACS that pushes its whole archive over one association. The listener writes
every incoming instance to disk as it arrives (pynetdicom's chunked receive), so memory stays bounded
whatever the size; these limits bound the disk: an instance past ``max_instance_bytes`` is refused with
a DICOM failure status, and so is every instance past ``max_instances`` or ``max_bytes`` of one
association (the sender may open a new association later; a well-behaved PACS retries).

The counters are per association and thread-safe: pynetdicom reads a connection's PDUs in one thread
and runs the C-STORE handler in another.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Literal

MIB = 1 << 20

#: an enhanced CT of 2,048 frames of 512 x 512 16-bit pixels is 1 GiB; twice that covers what the
#: study's modalities send, and stops a runaway sender long before the disk fills
DEFAULT_MAX_INSTANCE_BYTES = 2048 * MIB
#: a PACS pushing a large backlog over one association (tens of thousands of slices) stays under these
DEFAULT_MAX_ASSOCIATION_INSTANCES = 50_000
DEFAULT_MAX_ASSOCIATION_BYTES = 100 * 1024 * MIB

Ending = Literal["released", "aborted", "closed"]


@dataclass(frozen=True)
class ListenerLimits:
    """How much one instance and one association may bring in (see the module docstring).

    Attributes
    ----------
    max_instance_bytes
        Largest instance accepted, as written to disk (preamble, file meta and data set).
    max_instances, max_bytes
        Instances and bytes one association may store; past either, every further C-STORE of that
        association is refused (answered 0xA700, out of resources).
    """

    max_instance_bytes: int = DEFAULT_MAX_INSTANCE_BYTES
    max_instances: int = DEFAULT_MAX_ASSOCIATION_INSTANCES
    max_bytes: int = DEFAULT_MAX_ASSOCIATION_BYTES

    def __post_init__(self) -> None:
        for name in ("max_instance_bytes", "max_instances", "max_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"listener limit {name} must be at least 1, not {getattr(self, name)}")


@dataclass(frozen=True)
class AssociationSummary:
    """What one association did: counts only (no AE title, no UID, nothing about a patient)."""

    number: int
    stored: int
    refused: int
    bytes: int
    seconds: float
    ended: Ending

    def line(self) -> str:
        """One line for a terminal, e.g. ``association 3 released after 2.1 s: 12 stored (6.3 MB)``."""
        text = (
            f"association {self.number} {self.ended} after {self.seconds:.1f} s: "
            f"{self.stored} stored ({self.bytes / 1e6:.1f} MB)"
        )
        return f"{text}, {self.refused} refused" if self.refused else text


@dataclass
class AssociationGuard:
    """The limits and counters of one association.

    :meth:`check_partial` is asked while an instance is still arriving (with the bytes written so
    far), :meth:`check_complete` once it is complete; both return the refusal reason or None. A refusal
    decided while the data arrived is remembered for that instance's file, so the C-STORE handler gives
    the same answer even though the file was cut short.
    """

    number: int
    limits: ListenerLimits
    started: float = field(default_factory=time.monotonic)
    stored: int = 0
    refused: int = 0
    bytes: int = 0
    ended: Ending = "closed"
    #: the temporary file an instance is arriving in, until its C-STORE is answered (removed if the
    #: association ends first: a half-received instance is never left behind)
    spool: str | None = None
    _refusals: dict[str, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _reason(self, size: int) -> str | None:
        """Why an instance of ``size`` bytes (so far) cannot be stored, or None; call with the lock."""
        if size > self.limits.max_instance_bytes:
            return (
                f"instance larger than the listener's maximum of {self.limits.max_instance_bytes / MIB:.0f} "
                "MiB (--max-instance-mb)"
            )
        if self.stored >= self.limits.max_instances:
            return f"association already stored its maximum of {self.limits.max_instances} instances"
        if self.bytes + size > self.limits.max_bytes:
            return f"association past its maximum of {self.limits.max_bytes / MIB:.0f} MiB"
        return None

    def check_partial(self, spool: str, size: int) -> str | None:
        """The refusal of the instance being written to ``spool`` (``size`` bytes so far), or None."""
        with self._lock:
            if spool in self._refusals:
                return self._refusals[spool]
            reason = self._reason(size)
            if reason is not None:
                self._refusals[spool] = reason
            return reason

    def check_complete(self, spool: str, size: int) -> str | None:
        """The refusal of the complete instance in ``spool`` (``size`` bytes), or None; forgets ``spool``."""
        with self._lock:
            decided = self._refusals.pop(spool, None)
            return decided if decided is not None else self._reason(size)

    def count(self, *, stored: int = 0, refused: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.stored += stored
            self.refused += refused
            self.bytes += nbytes

    def summary(self) -> AssociationSummary:
        with self._lock:
            return AssociationSummary(
                self.number,
                self.stored,
                self.refused,
                self.bytes,
                time.monotonic() - self.started,
                self.ended,
            )
