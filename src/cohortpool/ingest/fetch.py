"""Pull what is new from a PACS into the landing folder: the one-off fetch a nightly task wraps.

Steps: find the studies changed since the source's watermark, skip the instances the ledger already
holds, retrieve the rest with retries, write each atomically under
``<landing>/<site_id>/<night>/dicom/<study>/<series>/<sop>.dcm``, record it in the ledger, and move the
watermark only if every study came through. A failed run therefore repeats its window next time, and
the ledger makes that repeat cheap and harmless: an instance fetched twice is written once.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cohortpool.ingest import http, state
from cohortpool.ingest.dicomweb import DicomWebSource
from cohortpool.ingest.errors import InvalidInstanceError, SourceError
from cohortpool.ingest.orthanc import OrthancSource, looks_like_orthanc
from cohortpool.ingest.source import Source, StudyRef
from cohortpool.ingest.store import (
    check_night,
    check_site_id,
    instance_path,
    night_dir,
    today,
    uids_of,
    write_atomic,
)

log = logging.getLogger(__name__)

Protocol = Literal["auto", "orthanc", "dicomweb"]


@dataclass(frozen=True)
class FetchResult:
    """What one fetch did (counts only: no UIDs or names, so it can go into logs and run summaries).

    ``ok`` is False when some study failed; the watermark then stayed where it was (``watermark_after``
    equals ``watermark_before``) and the next run retries the same window.
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

    @property
    def ok(self) -> bool:
        """True if every study found was fetched (or had gone from the source)."""
        return not self.failures


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
        tally = _Tally()
        total = len(discovery.studies)
        for done, study in enumerate(discovery.studies, start=1):
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                tally.failures.append(
                    f"{source.key}: time budget of {budget_seconds:g} s used up with {total - done + 1} of "
                    f"{total} studies left (a slow PACS?): the next run continues where this one stopped"
                )
                break
            _fetch_study(source, study, conn, landing, site_id, night, fsync, tally)
            if progress is not None:
                progress(done, len(discovery.studies))
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
        studies_found=len(discovery.studies),
        studies_fetched=tally.studies_fetched,
        studies_vanished=tally.studies_vanished,
        instances_written=tally.written,
        instances_already_held=tally.held,
        bytes_written=tally.bytes,
        failures=tuple(tally.failures),
        watermark_before=before,
        watermark_after=after,
    )
    log.info(
        "%s: wrote %d instances of %d studies, %d already held",
        source.key,
        result.instances_written,
        result.studies_fetched,
        result.instances_already_held,
    )
    return result


@dataclass
class _Tally:
    studies_fetched: int = 0
    studies_vanished: int = 0
    written: int = 0
    held: int = 0
    bytes: int = 0

    def __post_init__(self) -> None:
        self.failures: list[str] = []


def _fetch_study(
    source: Source,
    study: StudyRef,
    conn: sqlite3.Connection,
    landing: Path,
    site_id: str,
    night: str,
    fsync: bool,
    tally: _Tally,
) -> None:
    """Fetch the instances of one study that the ledger does not hold yet; failures go to the tally."""
    if study.study_uid is not None and study.n_instances is not None:
        held = state.held_instances(conn, site_id, study.study_uid)
        if len(held) >= study.n_instances:
            tally.held += len(held)
            return
    try:
        refs = source.instances(study)
    except SourceError as exc:
        tally.failures.append(str(exc))
        return
    if refs is None:
        tally.studies_vanished += 1
        return
    wrote_any = False
    for ref in refs:
        if ref.sop_instance_uid and state.is_held(conn, site_id, ref.sop_instance_uid):
            tally.held += 1
            continue
        origin = http.redact(f"{source.key.split(':', 1)[1]}{ref.locator}")
        try:
            data = source.retrieve(ref)
            uids = uids_of(data, origin)
            if ref.sop_instance_uid and uids.sop_instance != ref.sop_instance_uid:
                raise InvalidInstanceError(
                    f"{origin}: the file's SOPInstanceUID differs from the one the source listed; "
                    "the PACS index may be corrupt, check it"
                )
        except (SourceError, InvalidInstanceError) as exc:
            tally.failures.append(str(exc))
            continue
        if state.is_held(conn, site_id, uids.sop_instance):
            tally.held += 1
            continue
        digest = write_atomic(instance_path(landing, site_id, night, uids), data, fsync=fsync)
        state.record_instance(
            conn,
            site_id=site_id,
            sop_instance_uid=uids.sop_instance,
            study_uid=uids.study,
            source=source.key,
            night=night,
            sha256=digest,
        )
        tally.written += 1
        tally.bytes += len(data)
        wrote_any = True
    if wrote_any:
        tally.studies_fetched += 1
