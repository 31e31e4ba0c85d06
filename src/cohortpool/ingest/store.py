"""Where an ingested DICOM instance goes in the landing folder, and how it gets there atomically.

Instances fetched from a PACS or received over C-STORE land in the site drop shape of the data contract
(section 1), ``<landing>/<site_id>/<YYYY-MM-DD>/dicom/``, named from their UIDs:
``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``. The landing folder is site-internal, so
UIDs in names are acceptable there (de-identification replaces them before anything leaves the site).

Every write goes to a hidden temporary file in the destination folder, is flushed and fsynced, then
renamed over the final name with ``os.replace``: the rename is atomic on POSIX file systems, so a reader
sees either no file or the complete file, never a half-written one. Readers skip names starting with ``.``.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.errors import InvalidDicomError

from cohortpool.contract.identifiers import NIGHT, SITE_ID_RULE, is_site_id, is_uid
from cohortpool.contract.quiet import pydicom_quiet
from cohortpool.ingest.errors import InvalidInstanceError

#: suffix of in-progress writes; together with the leading dot it marks a file every reader must skip
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class InstanceUids:
    """The three UIDs that name an instance's file."""

    study: str
    series: str
    sop_instance: str


def check_site_id(site_id: str) -> str:
    """Return ``site_id`` if it is a valid site id (it becomes a folder name), else raise ``ValueError``."""
    if not is_site_id(site_id):
        raise ValueError(
            f"site id {site_id!r} must be {SITE_ID_RULE} (the same rule as the site_id of cohortpool.yaml)"
        )
    return site_id


def check_night(night: str) -> str:
    """Return ``night`` if it is a real ``YYYY-MM-DD`` date, else raise ``ValueError``."""
    if not NIGHT.match(night):
        raise ValueError(f"night {night!r} must be a date written YYYY-MM-DD")
    try:
        dt.date.fromisoformat(night)
    except ValueError as exc:
        raise ValueError(f"night {night!r} is not a calendar date (YYYY-MM-DD)") from exc
    return night


def today() -> str:
    """Today's local date as a night name: the folder a run or a reception lands in."""
    return dt.date.today().isoformat()


def is_valid_uid(value: str) -> bool:
    """True if ``value`` is a syntactically valid DICOM UID (PS3.5 9.1): checked before a UID becomes a
    path part, so a sender cannot name a file "../../x"."""
    return is_uid(value)


def uids_of(data: bytes, origin: str) -> InstanceUids:
    """Read the study, series and SOP instance UIDs of an encoded DICOM file.

    Parameters
    ----------
    data
        The Part 10 file bytes (preamble and file meta included).
    origin
        Where the bytes came from (a URL or peer), for the error message; never PHI.
    """
    return _read_uids(io.BytesIO(data), origin)


def uids_of_file(path: Path, origin: str) -> InstanceUids:
    """:func:`uids_of` for a file on disk, reading only the header, never the whole file.

    Elements other than the three UIDs are skipped by seeking, and any value over 1 MiB is left unread,
    so a multi-gigabyte instance costs a few kilobytes of memory.
    """
    with Path(path).open("rb") as handle:
        return _read_uids(handle, origin)


def _read_uids(source: BinaryIO, origin: str) -> InstanceUids:
    try:
        # pydicom's warnings repeat the values it finds odd ("Invalid value for VR UI: '<a name>'"):
        # never on the listener's or fetch's terminal or log
        with pydicom_quiet():
            ds = pydicom.dcmread(
                source,
                defer_size="1 MB",
                stop_before_pixels=True,
                specific_tags=["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"],
            )
    except (InvalidDicomError, EOFError, ValueError, TypeError, OSError) as exc:
        raise InvalidInstanceError(
            f"{origin}: not a readable DICOM Part 10 file ({type(exc).__name__})"
        ) from exc
    values = []
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        with pydicom_quiet():  # the value is converted (and judged by pydicom) as it is read
            value = str(ds.get(keyword, "") or "").strip().rstrip("\x00")
        if not is_valid_uid(value):
            raise InvalidInstanceError(
                f"{origin}: {keyword} is missing or not a valid UID (digits and dots, <= 64 characters); "
                "fix the sending system's export, the instance was not stored"
            )
        values.append(value)
    return InstanceUids(*values)


def night_dir(landing: Path, site_id: str, night: str) -> Path:
    """The ``dicom/`` folder of one site night (data contract section 1)."""
    return Path(landing) / check_site_id(site_id) / check_night(night) / "dicom"


def instance_path(landing: Path, site_id: str, night: str, uids: InstanceUids) -> Path:
    """The final path of an instance in the landing folder."""
    for value in (uids.study, uids.series, uids.sop_instance):
        if not is_valid_uid(value):  # defence in depth: callers normally get uids from uids_of
            raise InvalidInstanceError(f"refusing to build a file name from invalid UID {value!r}")
    return night_dir(landing, site_id, night) / uids.study / uids.series / f"{uids.sop_instance}.dcm"


def write_atomic(path: Path, data: bytes, *, fsync: bool = True) -> str:
    """Write ``data`` to ``path`` so that no reader ever sees a partial file; return its sha256.

    The temporary file lives in the destination folder (same file system, so ``os.replace`` is an atomic
    rename) under a hidden ``.<name>.<random>.tmp`` name; it is removed if anything fails. With ``fsync``
    the data and then the folder entry are flushed to disk, so a power cut after the return cannot leave
    an empty or truncated file behind a valid name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        tmp.chmod(0o640)  # mkstemp makes 0600; the landing folder's group (site staff) may read
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(path.parent)
    return hashlib.sha256(data).hexdigest()


def place_atomic(source: Path, path: Path, *, fsync: bool = True) -> None:
    """Move the complete file ``source`` to ``path`` so that no reader ever sees a partial file.

    On one file system this is a rename: the bytes are not copied, however large the file. Across
    file systems the file is copied (by the kernel, in bounded memory) to a hidden temporary name in
    the destination folder and renamed, as :func:`write_atomic` does. ``source`` is gone afterwards.
    With ``fsync`` the data and the folder entry reach the disk before the function returns.
    """
    source, path = Path(source), Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fsync:
        _fsync_file(source)
    source.chmod(0o640)  # as write_atomic: the landing folder's group (site staff) may read
    try:
        source.replace(path)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            shutil.copyfile(source, tmp)
            if fsync:
                _fsync_file(tmp)
            tmp.chmod(0o640)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        source.unlink()
    if fsync:
        _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    """Flush a file's data to disk (a read-only descriptor is enough on POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Flush a folder entry (the rename) to disk; a no-op where folders cannot be opened (Windows)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def is_in_progress(path: Path) -> bool:
    """True for the hidden temporary files of :func:`write_atomic` (and any other dot-file)."""
    return path.name.startswith(".") or path.name.endswith(TMP_SUFFIX)
