"""Find the site nights in a landing folder that still need processing.

A landing folder holds site drops, ``<landing>/<site_id>/<YYYY-MM-DD>/`` (data contract section 1),
written by a hospital's export, by ``cohortpool fetch`` or by ``cohortpool listen``. A night is pending
when it was never processed, or when its content changed since it was (a re-delivery, or late
C-STORE arrivals). Content is identified by a sha256 over every file's relative path and sha256, so a
copy with new timestamps but the same bytes is recognised as already processed. A night whose file
list, sizes and modification times are unchanged since it was processed is not read again, so a landing
folder with months of nights costs a directory walk per scan, not a re-read. Files still being
written (hidden ``.name.tmp`` files of an atomic write) are ignored, and a night whose newest file is
younger than ``settle_seconds`` is left for the next scan, so an export in progress is not taken half.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cohortpool.contract.files import sha256_tree
from cohortpool.ingest import state
from cohortpool.ingest.errors import IngestError
from cohortpool.ingest.store import check_night, check_site_id, is_in_progress

log = logging.getLogger(__name__)

NightStatus = Literal["new", "redelivered"]


@dataclass(frozen=True)
class SiteNight:
    """One site's delivery for one night, waiting to be processed.

    Attributes
    ----------
    site_id, night
        Where it sits: ``<landing>/<site_id>/<night>/``.
    path
        The night folder.
    content_sha256
        Checksum of the night's content (paths and bytes of every file); pass the object back to
        :func:`mark_processed` once the night went through, so the same content is not taken again.
    n_files, n_bytes
        Size of the delivery (for progress and the run summary).
    status
        ``new`` (never processed) or ``redelivered`` (processed before, the content changed since).
    """

    site_id: str
    night: str
    path: Path
    content_sha256: str
    n_files: int
    n_bytes: int
    status: NightStatus
    #: sha256 over every file's path, size and modification time (lets the next scan skip reading it)
    stat_sha256: str = ""


@dataclass(frozen=True)
class LandingScan:
    """What a scan found: the nights to process, and the sites whose folder could not be read."""

    pending: list[SiteNight]
    #: site_id -> why its folder could not be read (missing, not a folder, permission denied); the
    #: message names the folder and what to do, never a file below it (those are named after patients)
    failed: dict[str, str]


def scan_landing(landing: Path, state_dir: Path, *, settle_seconds: float = 0.0) -> list[SiteNight]:
    """The nights of every site in ``landing`` that are new or changed (see :func:`scan_sites`)."""
    return scan_sites(landing, state_dir, settle_seconds=settle_seconds).pending


def _site_folder_problem(site_dir: Path) -> str | None:
    """Why a configured site's folder cannot be scanned, or None."""
    if not site_dir.exists():
        what = "a link to something that is gone" if site_dir.is_symlink() else "missing"
        return (
            f"landing folder {site_dir} is {what} (share not mounted, or the site never sent anything): "
            "mount or create it; the site's nights are taken by the next run that can read them"
        )
    if not site_dir.is_dir():
        return f"{site_dir} is a file, not the site's landing folder: move it away and create the folder"
    return None


def scan_sites(
    landing: Path, state_dir: Path, *, configured: tuple[str, ...] = (), settle_seconds: float = 0.0
) -> LandingScan:
    """The nights of every site in ``landing`` that are new or changed since they were processed.

    Parameters
    ----------
    landing
        The landing folder (``<landing>/<site_id>/<YYYY-MM-DD>/``).
    state_dir
        The site's ingest state folder (see :mod:`cohortpool.ingest.state`).
    configured
        The sites that are expected to have a folder: one that is missing is a failed site, not an
        idle one (a dangling mount must not look like a quiet night).
    settle_seconds
        Leave a night alone while any of its files was modified less than this many seconds ago (an
        export still in progress); 0 takes everything present.

    Returns
    -------
    LandingScan
        Pending nights sorted by site and night, and the sites that could not be read with the reason.
        Folders that do not have the drop shape are logged as warnings with what to do, never silently
        taken.
    """
    landing = Path(landing)
    if not landing.is_dir():
        raise IngestError(
            f"landing folder {landing} does not exist or is not a folder; create it or fix --landing"
        )
    pending: list[SiteNight] = []
    failed = {
        site_id: problem
        for site_id in configured
        if (problem := _site_folder_problem(landing / site_id)) is not None
    }
    now = time.time()
    with state.open_state(state_dir) as conn:
        done = state.processed_nights(conn)
        for site_dir in sorted(p for p in landing.iterdir() if not p.name.startswith(".")):
            if site_dir.name in failed:
                continue
            site_id = _checked(site_dir, check_site_id, "a site id (a-z, 0-9, _; 2-32 characters)")
            if site_id is None:
                continue
            try:
                pending.extend(_scan_site(conn, site_id, site_dir, done, now, settle_seconds))
            except Exception as exc:  # one site's trouble, whatever it is, never stops the others
                failed[site_id] = _failure_reason(site_dir, exc)
                log.error("site %s: %s", site_id, failed[site_id])
    return LandingScan(pending, dict(sorted(failed.items())))


def _scan_site(
    conn: sqlite3.Connection,
    site_id: str,
    site_dir: Path,
    done: dict[tuple[str, str], tuple[str, str]],
    now: float,
    settle_seconds: float,
) -> list[SiteNight]:
    """The pending nights of one site folder (nothing is kept of a site whose scan fails half-way)."""
    found: list[SiteNight] = []
    for night_dir in sorted(p for p in site_dir.iterdir() if not p.name.startswith(".")):
        night = _checked(night_dir, check_night, "a night (YYYY-MM-DD)")
        if night is None:
            continue
        pending = _pending_night(
            conn, site_id, night, night_dir, done.get((site_id, night)), now, settle_seconds
        )
        if pending is not None:
            found.append(pending)
    return found


def _failure_reason(site_dir: Path, exc: Exception) -> str:
    """Why a site's scan failed, naming its folder and what to do, never a file below it.

    Below the site folder, names carry patient names (a PACS export's ``DOE^JANE_12345``), and an
    exception's message may quote one: only the exception type and a reason free of names are kept
    (``errno`` and ``strerror`` of an ``OSError``; the codec's reason of a ``UnicodeError``).
    """
    if isinstance(exc, OSError):
        return (
            f"cannot read {site_dir} or a file below it ({type(exc).__name__}, errno {exc.errno}: "
            f"{exc.strerror}): give the cohortpool user read access; the night is taken by the next run"
        )
    detail = f": {exc.reason}" if isinstance(exc, UnicodeError) and hasattr(exc, "reason") else ""
    return (
        f"scanning {site_dir} failed ({type(exc).__name__}{detail}); the other sites went on: "
        "a bug in cohortpool's scan, please report it with this line; the night is taken again by the "
        "next run once it is fixed"
    )


def _pending_night(
    conn: sqlite3.Connection,
    site_id: str,
    night: str,
    night_dir: Path,
    previous: tuple[str, str] | None,
    now: float,
    settle_seconds: float,
) -> SiteNight | None:
    """The night if it needs processing; None if empty, settling, or processed with this content."""
    files = _files(night_dir)
    if not files:
        log.info("%s: empty night folder, nothing to process yet", night_dir)
        return None
    stat_digest, n_bytes, newest = _stat_digest(night_dir, files)
    if settle_seconds > 0 and now - newest < settle_seconds:
        log.info(
            "%s: still being written (a file changed %.0f s ago), left for the next scan",
            night_dir,
            now - newest,
        )
        return None
    if previous is not None and previous[1] == stat_digest:
        return None  # same files, sizes and times as when processed: not read again
    digest = _content_digest(night_dir, files)
    if previous is not None and previous[0] == digest:
        # same bytes under new timestamps (a copy): remember the new stats so the next scan skips reading
        state.record_night(conn, site_id, night, digest, stat_digest, len(files))
        return None
    status: NightStatus = "new" if previous is None else "redelivered"
    if status == "redelivered":
        log.warning("%s: content changed since it was processed: re-delivered, taken again", night_dir)
    return SiteNight(site_id, night, night_dir, digest, len(files), n_bytes, status, stat_digest)


def mark_processed(site_night: SiteNight, state_dir: Path) -> None:
    """Record that ``site_night`` (with the content it was scanned with) went through the site flow.

    Call it only after the night was fully processed: a crash before leaves the night pending, which is
    what makes a re-run pick it up again.
    """
    with state.open_state(state_dir) as conn:
        state.record_night(
            conn,
            site_night.site_id,
            site_night.night,
            site_night.content_sha256,
            site_night.stat_sha256,
            site_night.n_files,
        )


def _checked(entry: Path, check: Callable[[str], str], what: str) -> str | None:
    """The entry's name if ``check`` accepts it; otherwise log why it is skipped and return None.

    The log names the parent folder and a short hash of the entry, not the entry's name: a misplaced
    PACS export is named after the patient (``DOE^JANE_12345``) and logs must carry no PHI.
    ``cohortpool`` never deletes or moves it; the operator finds it with ``ls`` in that folder.
    """
    shown = f"{entry.parent}/<entry {hashlib.sha256(os.fsencode(entry.name)).hexdigest()[:8]}>"
    if not entry.is_dir():
        log.warning("%s: a file where %s folder is expected; move it into a night folder", shown, what)
        return None
    try:
        return check(entry.name)
    except ValueError:
        log.warning(
            "%s: skipped, the folder name is not %s; rename it to the drop shape "
            "<landing>/<site_id>/<YYYY-MM-DD>/",
            shown,
            what,
        )
        return None


def _files(night_dir: Path) -> list[Path]:
    """Every complete file of a night, sorted by relative path (hidden and in-progress files left out).

    Sorted by the names' bytes: for UTF-8 names that is the order of their characters, and a name that
    is not UTF-8 (``caf\\xe9.dcm`` from a Latin-1 export) still has a fixed place.
    """
    return sorted(
        (p for p in night_dir.rglob("*") if p.is_file() and not _hidden(p.relative_to(night_dir))),
        key=lambda p: _name_bytes(night_dir, p),
    )


def _name_bytes(night_dir: Path, path: Path) -> bytes:
    """The relative path as it is on disk: names are bytes to the file system, and need not be UTF-8.

    ``os.fsencode`` turns the surrogate escapes Python decoded an undecodable name into back into the
    original bytes, so every name hashes, and a UTF-8 name hashes exactly as its UTF-8 text did.
    """
    return os.fsencode(path.relative_to(night_dir).as_posix())


def _stat_digest(night_dir: Path, files: list[Path]) -> tuple[str, int, float]:
    """sha256 over ``path NUL size NUL mtime_ns LF`` of the files; also the byte count and newest mtime."""
    outer = hashlib.sha256()
    n_bytes, newest = 0, 0.0
    for path in files:
        stat = path.stat()
        outer.update(_name_bytes(night_dir, path) + f"\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        n_bytes += stat.st_size
        newest = max(newest, stat.st_mtime)
    return outer.hexdigest(), n_bytes, newest


def _content_digest(night_dir: Path, files: list[Path]) -> str:
    """The tree digest of the files (:func:`cohortpool.contract.files.sha256_tree`), whose listing encodes a
    name that is not UTF-8 back to its on-disk bytes.

    Paths are hashed, never stored: they carry hospital identifiers in a real PACS export.
    """
    return sha256_tree(night_dir, (path.relative_to(night_dir).as_posix() for path in files))


def _hidden(rel: Path) -> bool:
    """True if any part of the path is hidden or the file is an in-progress write."""
    return any(part.startswith(".") for part in rel.parts) or is_in_progress(rel)
