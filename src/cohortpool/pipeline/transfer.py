"""The hops between a site and the hub: push a site's submissions, receive the hub's inbox, and check a
submission against its ``submission.json`` and the site registry before the hub validates it.

The hub validates only verified submissions. ``receive`` verifies what arrives in the inbox; the hub run
checks again what lies in ``OUT/submissions`` (a folder copied there by hand was never received), and the
all-in-one nightly run checks each submission it has just made, between its site half and its hub half,
so the verification is exercised every night. What fails is moved to ``OUT/rejected/<site>/<night>/``
with a ``reason.json`` and is never validated; the other site-nights go on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cohortpool.pipeline.records import SubmissionSummary
from cohortpool.pipeline.runconfig import RunConfig, run_secret
from cohortpool.transport import (
    DestinationError,
    ManifestError,
    OutboxBusyError,
    Pusher,
    SubmissionDamagedError,
    TransientError,
    check_submission,
    describe,
    opener,
    receive,
    refuse,
)
from cohortpool.transport import outbox as queue

#: how long a site-edge run keeps retrying a dropped connection before leaving the rest queued
PUSH_BUDGET_SECONDS = 30 * 60.0


class SubmissionRefusedError(Exception):
    """A submission failed verification: it was moved to ``OUT/rejected`` and will not be validated."""


class PushFailedError(Exception):
    """Some submissions could not be pushed (they stay queued for the next run) or were refused."""


#: what a transport step may expect to fail with: the task ends Failed with one line, no traceback
TRANSFER_FAILURES: tuple[type[Exception], ...] = (
    SubmissionRefusedError,
    PushFailedError,
    DestinationError,
    OutboxBusyError,
)


def registry_of(config: RunConfig) -> dict[str, str | None]:
    """The site registry as verification uses it: declared site id -> pinned key fingerprint."""
    return {site.site_id: site.key_fingerprint for site in config.sites}


def hub_secret(config: RunConfig) -> bytes | None:
    """The consortium secret when this run holds one, else None.

    A hub need not hold the key (whoever does can compute a known record number's pseudonym), so the
    hub's runs verify without it on files, sizes and pinned fingerprints, as ``cohortpool receive``
    does. When the run was started with a key (always at a site and in the all-in-one nightly run; at
    a hub that chose to hold it), verification checks each ``submission.json``'s seal with it too, the
    same checks ``cohortpool receive`` makes there. Read in the process that verifies, never passed as
    a flow or task parameter (Prefect stores those).
    """
    return run_secret(config) if config.key_fingerprint is not None else None


def verify_submission(
    submission: SubmissionSummary,
    registry: Mapping[str, str | None],
    out: Path,
    secret: bytes | None = None,
) -> SubmissionSummary:
    """``submission`` when it passes every check ``receive`` makes (declared site, its identity, the
    pinned key fingerprint, every listed file with its size and sha256, nothing unlisted; with
    ``secret``, the seal and the key fingerprint that secret gives), files the hub itself erased for
    withdrawn patients read as they were (``erasure.json``).

    Raises
    ------
    SubmissionRefusedError
        It failed; it is now in ``out/rejected/<site>/<night>/`` with ``reason.json``.
    """
    site, night = submission.site_id, submission.night
    # the folder is the hub's own by now: files it erased for withdrawn patients are explained by its
    # erasure.json, so a verification after an erasure (a re-run, an expired cache) refuses nothing
    listing, problems = check_submission(submission.path, site, night, registry, secret=secret, erased=True)
    if listing is not None and not problems:
        return submission
    arrival = refuse(submission.path, site, night, out, problems)
    raise SubmissionRefusedError(
        f"{site}/{night} refused: {arrival.reason}; moved to {arrival.path} (see {arrival.path}/reason.json)"
    )


@dataclass
class ReceiveSummary:
    """What one receive of the hub's inbox did (site/night names and reasons only)."""

    admitted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    #: (site, night, reason); the night is empty for an entry that is not a site folder
    refused: list[tuple[str, str, str]] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{len(self.admitted)} admitted", f"{len(self.refused)} refused"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicate(s)")
        return ", ".join(parts)


def receive_inbox(
    inbox: Path, out: Path, registry: Mapping[str, str | None], secret: bytes | None = None
) -> ReceiveSummary:
    """Admit every intact arrival of ``inbox`` into ``out/submissions`` and refuse the rest into
    ``out/rejected`` (:func:`cohortpool.transport.receive`; seals checked when given ``secret``)."""
    summary = ReceiveSummary()
    if not inbox.is_dir():
        return summary
    for arrival in receive(inbox, out, registry, secret=secret):
        name = f"{arrival.site}/{arrival.night}" if arrival.night else arrival.site
        if arrival.admitted:
            summary.admitted.append(name)
        elif arrival.status == "duplicate":
            summary.duplicates.append(name)
        else:
            summary.refused.append((arrival.site, arrival.night, arrival.reason))
    return summary


@dataclass
class PushSummary:
    """What one push of a site's queue did."""

    destination: str
    #: ``site/night status`` (delivered, replaced, unchanged)
    pushed: list[str] = field(default_factory=list)
    #: ``site/night: why`` (still queued, or refused as damaged)
    not_pushed: list[str] = field(default_factory=list)

    def line(self) -> str:
        line = f"{len(self.pushed)} submission(s) pushed to {self.destination}"
        return line + (f", {len(self.not_pushed)} not pushed" if self.not_pushed else "")


def push_outbox(
    outbox: Path,
    dest: str,
    site_id: str | None = None,
    budget_seconds: float = PUSH_BUDGET_SECONDS,
    known_hosts: list[Path] | None = None,
    identity: Path | None = None,
) -> PushSummary:
    """Push every submission ``outbox/<site>/<night>/`` not yet at ``dest`` (the site's queue: a night
    that could not be pushed is pushed by the next run), recording a receipt for each one pushed;
    with ``site_id``, only that site's submissions.

    Raises
    ------
    PushFailedError
        Some could not be pushed within the budget or were refused; the others were pushed.
    cohortpool.transport.DestinationError
        ``dest`` cannot be used (malformed, unknown host key, login refused).
    """
    where = describe(dest)
    summary = PushSummary(where)
    pusher = Pusher(opener(dest, known_hosts, identity), budget_seconds)
    with queue.locked(outbox), contextlib.closing(pusher):
        for folder in queue.pending(outbox, where):
            if site_id is not None and folder.parent.name != site_id:
                continue
            name = f"{folder.parent.name}/{folder.name}"
            try:
                result = pusher.push(folder)
            except (SubmissionDamagedError, ManifestError) as exc:
                summary.not_pushed.append(f"{name}: refused ({exc})")
                continue
            except TransientError as exc:
                summary.not_pushed.append(f"{name}: still queued ({exc})")
                continue
            queue.record(outbox, result, where)
            summary.pushed.append(f"{name} {result.status}")
    if summary.not_pushed:
        raise PushFailedError(f"{summary.line()}: " + "; ".join(summary.not_pushed[:3]))
    return summary
