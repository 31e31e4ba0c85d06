"""Pull what is new from a PACS into the landing folder: the one-off fetch a nightly task wraps.

Steps: find the studies changed since the source's watermark, skip the instances the ledger already
holds, retrieve the rest with retries, write each atomically under
``<landing>/<site_id>/<night>/dicom/<study>/<series>/<sop>.dcm``, record it in the ledger, and move the
watermark only if the source delivered every study. A run the source failed (unreachable, timeouts,
errors after retries, the time budget) therefore repeats its window next time, and the ledger makes that
repeat cheap and harmless: an instance fetched twice is written once.

An instance the source delivered but that cannot be stored (not readable DICOM, UIDs unusable as names,
UIDs that differ from the source's listing), or that the source lists under an invalid "UID" and then
cannot serve by it (DICOMweb addresses instances by UID: ``..`` or ``a/b`` name another resource or
none), is the instance's fault, not the source's: retrying will not change it. It is refused once, with
a reason naming what is wrong, and recorded in the state's ``refused_instances`` (by its source locator
and the sha256 of its bytes); the watermark moves past it.
Met again (an overlapping window, ``--full``, a later change to its study) with the same bytes, it is
skipped without a new refusal; with different bytes (fixed at the PACS) it is judged again. With
``retry_refused`` every recorded refusal of the source is judged again, and the studies holding them are
listed whatever the watermark, so an instance fixed at the PACS without a new change is fetched too.
Messages name a refused instance by its URL with every UID hashed (Orthanc: its internal instance id),
never by a UID, which a hostile instance may have filled with a patient's name.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from cohortpool.ingest import http, state
from cohortpool.ingest.dicomweb import DicomWebSource
from cohortpool.ingest.errors import InvalidInstanceError, SourceError
from cohortpool.ingest.orthanc import OrthancSource, looks_like_orthanc
from cohortpool.ingest.source import Source, StudyRef
from cohortpool.ingest.store import (
    check_night,
    check_site_id,
    instance_path,
    is_valid_uid,
    night_dir,
    today,
    uids_of,
    write_atomic,
)

log = logging.getLogger(__name__)

#: the sha256 recorded for a refusal whose bytes never came (the source could not serve them)
UNSERVED = "-"

Protocol = Literal["auto", "orthanc", "dicomweb"]


@dataclass(frozen=True)
class FetchResult:
    """What one fetch did (counts only: no UIDs or names, so it can go into logs and run summaries).

    ``ok`` is False when the source failed some study; the watermark then stayed where it was
    (``watermark_after`` equals ``watermark_before``) and the next run retries the same window. ``refused``
    holds one message per instance refused as unusable in this run: it does not keep the watermark
    (``ok`` stays True), and the instance is recorded so a later run does not refuse it again.
    """

    source: str
    protocol: str
    site_id: str
    night: str
    night_dir: Path
    studies_found: int
    studies_fetched: int
    studies_vanished: int
    instances_written: int
    instances_already_held: int
    bytes_written: int
    failures: tuple[str, ...]
    watermark_before: str | None
    watermark_after: str | None
    refused: tuple[str, ...] = ()
    #: instances met again with the bytes refused before: skipped, not refused anew
    instances_refused_before: int = 0

    @property
    def ok(self) -> bool:
        """True if the source delivered every study found (or it had gone); refusals do not count."""
        return not self.failures

    @property
    def clean(self) -> bool:
        """True if nothing failed and nothing was refused in this run (exit code 0)."""
        return self.ok and not self.refused


def fetch_new_studies(
    source_url: str,
    landing: Path,
    site_id: str,
    state_dir: Path,
    *,
    night: str | None = None,
    protocol: Protocol = "auto",
    full: bool = False,
    overlap_days: int = 7,
    timeout: float = 60.0,
    attempts: int = 4,
    backoff: float = 0.5,
    auth: tuple[str, str] | None = None,
    fsync: bool = True,
    progress: Callable[[int, int], None] | None = None,
    budget_seconds: float | None = None,
    retry_refused: bool = False,
) -> FetchResult:
    """Fetch every study new since the last successful run from ``source_url`` into the landing folder.

    Parameters
    ----------
    source_url
        An Orthanc REST root (``http://host:8042``) or a DICOMweb root (``http://host:8042/dicom-web``).
    landing, site_id
        Instances land in ``<landing>/<site_id>/<night>/dicom/``.
    state_dir
        Holds the source's watermark and the ledger of fetched instances (site-internal).
    night
        The night folder (``YYYY-MM-DD``); today by default.
    protocol
        ``orthanc`` (change log + REST files), ``dicomweb`` (QIDO-RS + WADO-RS), or ``auto``: Orthanc if
        ``<source_url>/system`` answers as Orthanc does, else DICOMweb.
    full
        Ignore the watermark and list every study (held instances are still skipped): the catch-up pass.
    overlap_days
        DICOMweb only: how many days before the last run's date the StudyDate window starts.
    timeout, attempts, backoff
        Per request: seconds before giving up, tries, first retry delay (doubling each retry).
    auth
        HTTP basic credentials, if the PACS needs them.
    fsync
        Flush every file to disk before it is renamed into place (leave on outside tests).
    progress
        Called with ``(studies done, studies found)`` after each study.
    budget_seconds
        Stop starting new studies after this long (a slow PACS must not hold the whole night): what is
        left counts as a failure, so the watermark stays and the next run takes it (skipping what is held).
    retry_refused
        Judge every instance refused before again (their studies are listed whatever the watermark), even
        if its bytes are unchanged: after the PACS fixed them, or after an upgrade changed the checks.

    Raises
    ------
    SourceError
        If the source cannot be reached or asked at all (discovery failed): nothing was changed.
    """
    check_site_id(site_id)  # bad usage fails before any request
    if night is not None:
        check_night(night)
    with http.make_client(timeout=timeout, auth=auth) as client:
        if protocol == "auto":
            is_orthanc = looks_like_orthanc(source_url, client, attempts=attempts, backoff=backoff)
            protocol = "orthanc" if is_orthanc else "dicomweb"
        source: Source
        if protocol == "orthanc":
            source = OrthancSource(source_url, client, attempts=attempts, backoff=backoff)
        elif protocol == "dicomweb":
            source = DicomWebSource(
                source_url, client, overlap_days=overlap_days, attempts=attempts, backoff=backoff
            )
        else:
            raise ValueError(f"protocol {protocol!r} must be auto, orthanc or dicomweb")
        return fetch_from_source(
            source,
            landing,
            site_id,
            state_dir,
            night=night,
            full=full,
            fsync=fsync,
            progress=progress,
            budget_seconds=budget_seconds,
            retry_refused=retry_refused,
        )


def fetch_from_source(
    source: Source,
    landing: Path,
    site_id: str,
    state_dir: Path,
    *,
    night: str | None = None,
    full: bool = False,
    fsync: bool = True,
    progress: Callable[[int, int], None] | None = None,
    budget_seconds: float | None = None,
    retry_refused: bool = False,
) -> FetchResult:
    """The fetch itself, for any :class:`~cohortpool.ingest.source.Source` (see :func:`fetch_new_studies`)."""
    check_site_id(site_id)
    started = time.monotonic()
    night = check_night(night or today())
    landing = Path(landing)
    with state.open_state(state_dir) as conn:
        before = state.get_watermark(conn, source.key)
        discovery = source.discover(before, full=full)
        log.info("%s: %d studies changed since watermark %s", source.key, len(discovery.studies), before)
        studies = list(discovery.studies)
        if retry_refused:
            studies += _studies_of_refusals(conn, site_id, source.key, {s.key for s in studies})
        tally = _Tally()
        run = _Run(source, conn, landing, site_id, night, fsync, retry_refused, tally)
        total = len(studies)
        for done, study in enumerate(studies, start=1):
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                tally.failures.append(
                    f"{source.key}: time budget of {budget_seconds:g} s used up with {total - done + 1} of "
                    f"{total} studies left (a slow PACS?): the next run continues where this one stopped"
                )
                break
            _fetch_study(run, study)
            if progress is not None:
                progress(done, total)
        after = before
        if not tally.failures:
            state.set_watermark(conn, source.key, discovery.next_watermark)
            after = discovery.next_watermark
        else:
            log.warning(
                "%s: %d failures, watermark kept at %s: the next run retries this window",
                source.key,
                len(tally.failures),
                before,
            )
    result = FetchResult(
        source=source.key,
        protocol=source.key.split(":", 1)[0],
        site_id=site_id,
        night=night,
        night_dir=night_dir(landing, site_id, night),
        studies_found=len(studies),
        studies_fetched=tally.studies_fetched,
        studies_vanished=tally.studies_vanished,
        instances_written=tally.written,
        instances_already_held=tally.held,
        bytes_written=tally.bytes,
        failures=tuple(tally.failures),
        watermark_before=before,
        watermark_after=after,
        refused=tuple(tally.refused),
        instances_refused_before=tally.refused_before,
    )
    log.info(
        "%s: wrote %d instances of %d studies, %d already held, %d refused, %d refused before (skipped)",
        source.key,
        result.instances_written,
        result.studies_fetched,
        result.instances_already_held,
        len(result.refused),
        result.instances_refused_before,
    )
    return result


@dataclass
class _Tally:
    studies_fetched: int = 0
    studies_vanished: int = 0
    written: int = 0
    held: int = 0
    bytes: int = 0
    refused_before: int = 0

    def __post_init__(self) -> None:
        self.failures: list[str] = []
        self.refused: list[str] = []


@dataclass
class _Run:
    """What every study of one run needs."""

    source: Source
    conn: sqlite3.Connection
    landing: Path
    site_id: str
    night: str
    fsync: bool
    retry_refused: bool
    tally: _Tally


def _studies_of_refusals(
    conn: sqlite3.Connection, site_id: str, source_key: str, listed: set[str]
) -> list[StudyRef]:
    """The studies holding refused instances of this source that discovery did not list already."""
    found: dict[str, StudyRef] = {}
    for refused in state.refused_instances(conn, site_id, source_key):
        if refused.study_key not in listed:
            found.setdefault(refused.study_key, StudyRef(refused.study_key, study_uid=refused.study_uid))
    return list(found.values())


def _fetch_study(run: _Run, study: StudyRef) -> None:
    """Fetch the instances of one study that the ledger does not hold yet; failures go to the tally."""
    source, conn, site_id, tally = run.source, run.conn, run.site_id, run.tally
    refused = {r.locator: r for r in state.refused_instances(conn, site_id, source.key, study.key)}
    if study.study_uid is not None and study.n_instances is not None and not refused:
        held = state.held_instances(conn, site_id, study.study_uid)
        if len(held) >= study.n_instances:
            tally.held += len(held)
            return
    try:
        refs = source.instances(study)
    except SourceError as exc:
        if study.study_uid is None or is_valid_uid(study.study_uid):
            tally.failures.append(str(exc))
            return
        # listed under a "UID" the PACS cannot list it by: the study's fault, and retrying will not help
        locator = f"/studies/{quote(study.key, safe='')}"
        origin = http.redact(f"{source.key.split(':', 1)[1]}{locator}")
        _refuse_unservable(run, study, locator, origin, refused.get(locator), "StudyInstanceUID")
        return
    if refs is None:
        tally.studies_vanished += 1
        state.forget_refused(conn, site_id, source.key, refused)  # gone from the PACS with its study
        return
    # a refused instance no longer in its study was deleted at the PACS: nothing is left to refuse
    state.forget_refused(conn, site_id, source.key, set(refused) - {ref.locator for ref in refs})
    wrote_any = False
    for ref in refs:
        if ref.sop_instance_uid and state.is_held(conn, site_id, ref.sop_instance_uid):
            tally.held += 1
            continue
        origin = http.redact(f"{source.key.split(':', 1)[1]}{ref.locator}")
        before = refused.get(ref.locator)
        try:
            data = source.retrieve(ref)
        except SourceError as exc:
            if all(is_valid_uid(uid) for uid in ref.addressed_by):
                tally.failures.append(str(exc))  # the PACS failed, not the instance: the watermark stays
            else:  # asked for by a "UID" that cannot name it ("..", "a/b"): the instance's fault
                what = "Study, Series or SOP Instance UID"
                _refuse_unservable(run, study, ref.locator, origin, before, what)
            continue
        digest = hashlib.sha256(data).hexdigest()
        if before is not None and before.sha256 == digest and not run.retry_refused:
            tally.refused_before += 1  # the bytes refused before: told once, not every night
            continue
        try:
            uids = uids_of(data, origin)
            if ref.sop_instance_uid and uids.sop_instance != ref.sop_instance_uid:
                raise InvalidInstanceError(
                    f"{origin}: the file's SOPInstanceUID differs from the one the source listed; "
                    "the PACS index may be corrupt, check it"
                )
        except InvalidInstanceError as exc:  # the instance is unusable: refuse it, once
            _refuse(run, study, ref.locator, origin, digest, str(exc))
            continue
        if before is not None:
            state.forget_refused(conn, site_id, source.key, [ref.locator])
        if state.is_held(conn, site_id, uids.sop_instance):
            tally.held += 1
            continue
        digest = write_atomic(instance_path(run.landing, site_id, run.night, uids), data, fsync=run.fsync)
        state.record_instance(
            conn,
            site_id=site_id,
            sop_instance_uid=uids.sop_instance,
            study_uid=uids.study,
            source=source.key,
            night=run.night,
            sha256=digest,
        )
        tally.written += 1
        tally.bytes += len(data)
        wrote_any = True
    if wrote_any:
        tally.studies_fetched += 1


def _refuse_unservable(
    run: _Run, study: StudyRef, locator: str, origin: str, before: state.RefusedInstance | None, what: str
) -> None:
    """Refuse what the source lists under an invalid UID and then cannot serve by it (once: met again
    and still unservable, it is counted as refused before)."""
    if before is not None and before.sha256 == UNSERVED and not run.retry_refused:
        run.tally.refused_before += 1
        return
    reason = (
        f"{origin}: the PACS lists it with a {what} that is not a valid UID (digits and dots, <= 64 "
        "characters) and cannot serve it by that value; nothing of it was stored"
    )
    _refuse(run, study, locator, origin, UNSERVED, reason)


def _refuse(run: _Run, study: StudyRef, locator: str, origin: str, digest: str, reason: str) -> None:
    """Record an unusable instance as refused and tell it (the reason names no UID: ``origin`` is
    redacted and the store's checks never quote a value)."""
    message = (
        f"refused {reason}; recorded in the fetch state (refused_instances), so it no longer holds the "
        "watermark: fix or delete the instance at the PACS, then run `cohortpool fetch --retry-refused`"
    )
    state.record_refused(
        run.conn,
        state.RefusedInstance(
            site_id=run.site_id,
            source=run.source.key,
            locator=locator,
            name=origin,
            study_key=study.key,
            study_uid=study.study_uid,
            sha256=digest,
            reason=reason,
            night=run.night,
        ),
    )
    log.info("%s", message)  # the caller tells it: the CLI on stderr, the flows as a warning
    run.tally.refused.append(message)
