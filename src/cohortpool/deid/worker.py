"""De-identify one file (runs inside a worker process; one :class:`Worker` per process).

The file is memory-mapped: hashed for the ledger, its header cleaned, and its pixel data copied to
the output by the kernel (``copy_file_range``, else written from the map), so memory stays at one
header per worker whatever the file size. The common file (explicit VR little endian with a file
meta group) takes :mod:`cohortpool.deid.fastpath`, which walks the raw bytes; everything else, and
anything that path declines, takes pydicom (:mod:`.stream`), which alone decides what to quarantine.
The output goes to a temporary name; the parent decides duplicates and moves it into place.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import mmap
import os
import signal
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from cohortpool.contract import MACHINE_ERRNOS
from cohortpool.contract.processes import die_with_parent
from cohortpool.contract.quiet import pydicom_quiet, warning_notes
from cohortpool.deid.actions import Cleaner, Context, ascii_values
from cohortpool.deid.burned_in import burned_in_reason
from cohortpool.deid.echo import echo_of
from cohortpool.deid.encode import encode_meta, raw_text
from cohortpool.deid.fastpath import Decline, FastPath, marker_bytes, top_dataset, uid_of
from cohortpool.deid.ledger import DEIDENTIFIED, QUARANTINED, Vault
from cohortpool.deid.markers import MARKER_TAGS, add_markers, marker_elements
from cohortpool.deid.pixel_text import blank_written, counts, text_segments, update_digest
from cohortpool.deid.profile import load_profile
from cohortpool.deid.pseudonym import Pseudonymiser, shift_da, unlinked_key
from cohortpool.deid.stream import UnreadableError, encode_header, encode_tail, read_header
from cohortpool.deid.uids import UidMapper, is_uid

#: (original header, identifiers of the output, released) -> a row for the imaging manifest. The header
#: holds the top-level data elements before the pixel data (on the fast path: not the file meta group);
#: ``released(tag)`` is true when the de-identified file keeps that element as the header has it (the
#: same decision as the output's): a manifest value must come from a released element
RecordHook = Callable[[Dataset, dict[str, str], Callable[[int], bool]], dict[str, Any]]
_UID_TAGS = (
    ("SOPClassUID", 0x00080016),
    ("SOPInstanceUID", 0x00080018),
    ("StudyInstanceUID", 0x0020000D),
    ("SeriesInstanceUID", 0x0020000E),
)
_STUDY_DATE = 0x00080020
_PATIENT_ID = 0x00100020
_REQUIRED = (
    ("SOPClassUID", "(0008,0016)"),
    ("SOPInstanceUID", "(0008,0018)"),
    ("StudyInstanceUID", "(0020,000D)"),
    ("SeriesInstanceUID", "(0020,000E)"),
)
#: data set attribute -> the file meta attribute that says the same (PS3.10 7.1)
_FROM_META = ((0x00080016, "MediaStorageSOPClassUID"), (0x00080018, "MediaStorageSOPInstanceUID"))
#: a manifest record's flag for an instance pseudonymised from its study (no Patient ID)
UNLINKED_FLAG = "patient_unlinked"


@dataclass(frozen=True)
class Job:
    """Everything a worker needs; picklable (the hook is a module-level function)."""

    secret: bytes = field(repr=False)
    site_id: str
    options: tuple[str, ...]
    allow_burned_in: bool
    max_shift_days: int
    in_dir: Path
    staging: Path
    vault: Path
    night: str
    hook: RecordHook | None = None


@dataclass
class Outcome:
    """What happened to one input file (sent back to the parent)."""

    input_path: str
    size: int
    sha256: str
    outcome: str
    reason: str = ""
    staged: str = ""
    output_path: str = ""
    output_sha256: str = ""
    sop_uid: str = ""
    crosswalk: list[tuple[str, str, str, str]] = field(default_factory=list)
    record: dict[str, Any] | None = None
    #: taken by the raw-bytes fast path (a count in the run summary; no identifiers)
    fast: bool = False
    #: (note, tag, VR) -> occurrences of attributes the retention list removed, emptied or replaced
    unlisted: dict[tuple[str, int, str], int] = field(default_factory=dict)
    #: no Patient ID: pseudonymised from the study (:func:`cohortpool.deid.pseudonym.unlinked_key`)
    unlinked: bool = False
    #: segment kind -> codestream header segments whose text was blanked (:mod:`.pixel_text`)
    blanked: dict[str, int] = field(default_factory=dict)


@dataclass
class _Identity:
    """What the header says before cleaning: pseudonyms, output identifiers, manifest row, crosswalk."""

    ctx: Context
    ids: dict[str, str]
    record: dict[str, Any] | None
    crosswalk: list[tuple[str, str, str, str]]
    unlinked: bool


class Worker:
    """Holds the per-process state: profile, keys, UID cache, vault.

    ``fast_path=False`` runs every file through pydicom (the oracle the fast path is tested against).
    """

    def __init__(self, job: Job, fast_path: bool = True) -> None:
        self.job = job
        self.profile = load_profile(job.options)
        self.keys = Pseudonymiser(job.secret, job.site_id, job.max_shift_days)
        self.uids = UidMapper(job.secret)
        self.cleaner = Cleaner(self.profile, self.keys, self.uids)
        self.vault = Vault(job.vault)
        self.fast: FastPath | None = None
        if fast_path and not self.cleaner.safe_private:
            markers = marker_elements(self.profile.options, job.allow_burned_in, False, True)
            self.fast = FastPath(self.cleaner, marker_bytes(markers))

    def _refused(self, source: Path) -> str | None:
        """Why an entry is not read at all: a symlink leaving the drop, a folder, a pipe or device.

        Nothing is opened or copied for these (a symlink may point at another patient's file on the
        site machine; opening a named pipe blocks the run forever).
        """
        info = source.lstat()
        if stat.S_ISLNK(info.st_mode):
            target = source.resolve()
            if not target.is_relative_to(self.job.in_dir.resolve()):
                return "symlink pointing outside the drop folder: not followed, not copied"
            if target.is_dir():
                return "symlink to a folder: not followed (send the files themselves)"
            info = target.stat()
        if stat.S_ISDIR(info.st_mode):
            return "folder that cannot be listed: check its permissions"
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file (pipe, socket or device): not read"
        return None

    def run(self, relative: str) -> Outcome:
        """De-identify ``in_dir / relative``, or quarantine it with the reason.

        pydicom's warnings and log records (which repeat header values) are captured, never shown;
        what they teach is counted without the value (:mod:`cohortpool.contract.quiet`).
        """
        with pydicom_quiet() as caught:
            outcome = self._run(relative)
        if outcome.outcome == DEIDENTIFIED:
            for key, n in warning_notes(caught).items():
                outcome.unlisted[key] = outcome.unlisted.get(key, 0) + n
        return outcome

    def _run(self, relative: str) -> Outcome:
        source = self.job.in_dir / relative
        try:
            refused = self._refused(source)
            handle = source.open("rb") if refused is None else None
        except OSError as exc:  # unreadable (permissions, vanished): recorded, never a crash of the run
            refused = f"cannot read: {type(exc).__name__} (errno {exc.errno}): check the file's permissions"
        if refused is not None or handle is None:
            return Outcome(relative, 0, hashlib.sha256().hexdigest(), QUARANTINED, reason=refused or "")
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                return self._quarantine(
                    relative, source, 0, hashlib.sha256().hexdigest(), "not DICOM: empty file"
                )
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                if self.fast is not None:
                    done = self._fast(relative, handle.fileno(), mapped)
                    if done is not None:
                        return done
                view = memoryview(mapped)
                try:
                    digest = hashlib.sha256(view).hexdigest()
                    try:
                        return self._deidentify(relative, handle, view, size, digest)
                    except UnreadableError as exc:
                        return self._quarantine(relative, source, size, digest, str(exc))
                    except OSError as exc:
                        if exc.errno in MACHINE_ERRNOS:
                            raise  # the disk is full or failing: the run fails, the file is not to blame
                        reason = f"cannot de-identify: {type(exc).__name__}: {exc}"
                        return self._quarantine(relative, source, size, digest, reason)
                    except Exception as exc:  # nothing is lost: any other failure quarantines the file
                        reason = f"cannot de-identify: {type(exc).__name__}: {exc}"
                        return self._quarantine(relative, source, size, digest, reason)
                finally:
                    view.release()

    def _quarantine(self, relative: str, source: Path, size: int, digest: str, reason: str) -> Outcome:
        self.vault.quarantine(self.job.night, source, relative)
        return Outcome(relative, size, digest, QUARANTINED, reason=reason)

    def _identify(self, ds: Dataset) -> _Identity:
        """Checks, pseudonyms and the manifest row from the header before cleaning (both paths).

        Raises
        ------
        UnreadableError
            A required attribute is missing, or the instance may carry burned-in identifiers.
        """
        # UIDs and dates are ASCII: read from the raw bytes, which spares pydicom's value conversion
        uid = {keyword: (ascii_values(ds, tag) or [""])[0] if tag in ds else "" for keyword, tag in _UID_TAGS}
        for keyword, label in _REQUIRED:
            if not uid[keyword]:
                raise UnreadableError(f"missing {keyword} {label}: cannot place or pseudonymise the instance")
        if not self.job.allow_burned_in:
            reason = burned_in_reason(ds)
            if reason:
                raise UnreadableError(reason)
        mrn = str(ds.get("PatientID", "") or "").strip()
        # Patient ID is Type 2 (empty is legal): such an instance is keyed on its study, unlinked
        local = mrn or unlinked_key(uid["StudyInstanceUID"])
        accession = str(ds.get("AccessionNumber", "") or "").strip()
        ctx = Context(self.keys.patient_id(local), self.keys.shift_days(local), echo_of(ds))
        ids = {
            "patient_id": ctx.patient_id,
            "accession_id": self.keys.accession_id(accession) if accession else "",
            "study_uid": self.uids.map(uid["StudyInstanceUID"]),
            "series_uid": self.uids.map(uid["SeriesInstanceUID"]),
            "sop_uid": self.uids.map(uid["SOPInstanceUID"]),
            "study_date": shift_da((ascii_values(ds, _STUDY_DATE) or [""])[0], ctx.shift_days) or "",
        }
        for keyword in ("study_uid", "series_uid", "sop_uid"):
            # they name the output's folders and file: the mapping gives UIDs, this says so where it counts
            if not is_uid(ids[keyword]):
                raise UnreadableError(f"{keyword} is not a UID after mapping: cannot place the instance")
        record = None
        if self.job.hook is not None:
            record = self.job.hook(ds, ids, lambda tag: self.cleaner.keeps(ds, tag, ctx))
        if record is not None and not mrn:
            record[UNLINKED_FLAG] = True
        if mrn:
            crosswalk = [("patient", mrn, ctx.patient_id, str(ctx.shift_days))]
        else:
            crosswalk = [("study", uid["StudyInstanceUID"], ctx.patient_id, str(ctx.shift_days))]
        if accession:
            crosswalk.append(("accession", accession, ids["accession_id"], ""))
        return _Identity(ctx, ids, record, crosswalk, unlinked=not mrn)

    def _fast(self, relative: str, fd: int, mapped: mmap.mmap) -> Outcome | None:
        """De-identify from the raw bytes, or ``None`` when the file is not for the fast path.

        Nothing here quarantines: whatever the fast path declines or fails on goes to the pydicom
        path, which gives the verdict and the reason.
        """
        assert self.fast is not None
        try:
            syntax, elements, start, end, after = self.fast.parse(mapped)
            ds = top_dataset(mapped, elements)
            if _PATIENT_ID not in ds:
                return None  # the pydicom path adds it (see _complete)
            identity = self._identify(ds)
            rendered = self.fast.render(mapped, elements, ds, identity.ctx)
            sop_class, sop_instance = uid_of(rendered, 0x00080016), uid_of(rendered, 0x00080018)
            head = encode_meta(sop_class, sop_instance, syntax) + b"".join(e[1] for e in rendered)
            tail = self.fast.tail(mapped, after, identity.ctx) if after is not None else b""
        except (Decline, UnreadableError):
            return None
        except Exception:  # an input the fast path did not foresee: the pydicom path decides
            return None
        ids = identity.ids
        source, output_digest = hashlib.sha256(), hashlib.sha256(head)
        view = memoryview(mapped)
        try:
            source.update(view[:start])
            # both digests over the pixel data chunk by chunk, while each chunk is in the CPU cache
            for offset in range(start, end, _HASH_CHUNK):
                chunk = view[offset : min(offset + _HASH_CHUNK, end)]
                source.update(chunk)
                output_digest.update(chunk)
                chunk.release()
            source.update(view[end:])
        finally:
            view.release()
        output_digest.update(tail)
        staged = self._staged(relative)
        try:
            _write(staged, head, fd, mapped, start, end, tail)
        except OSError as exc:
            if exc.errno in MACHINE_ERRNOS:
                raise  # the disk is full or failing: the run fails
            return None  # the pydicom path writes again and, if it fails too, gives the reason
        return Outcome(
            relative,
            len(mapped),
            source.hexdigest(),
            DEIDENTIFIED,
            staged=str(staged),
            output_path=_output_path(ids),
            output_sha256=output_digest.hexdigest(),
            sop_uid=ids["sop_uid"],
            crosswalk=identity.crosswalk,
            record=identity.record,
            fast=True,
            unlisted=dict(self.fast.unlisted),
            unlinked=identity.unlinked,
        )

    def _staged(self, relative: str) -> Path:
        # the name as the file system holds it: a name that is not UTF-8 is carried as surrogate escapes
        return self.job.staging / (hashlib.sha256(os.fsencode(relative)).hexdigest() + ".dcm")

    def _deidentify(self, relative: str, handle: Any, view: memoryview, size: int, digest: str) -> Outcome:
        header = read_header(handle, view)
        ds = header.ds
        _complete(ds)
        identity = self._identify(ds)
        ctx, ids = identity.ctx, identity.ids
        try:
            self.cleaner.clean(ds, ctx)
            add_markers(ds, self.profile, self.job.allow_burned_in, header.implicit, header.little)
            if header.original is not None:
                for replaced in self.cleaner.replaced | MARKER_TAGS:
                    header.original.pop(replaced, None)
            head = encode_header(header)
            tail = b""
            if header.tail is not None:
                self.cleaner.clean(header.tail, ctx, top=False)
                tail = encode_tail(header.tail, header.implicit, header.little)
        except UnreadableError:
            raise
        except Exception as exc:  # a value pydicom cannot re-encode: hold the file back, say which
            raise UnreadableError(f"cannot re-encode cleaned header: {type(exc).__name__}: {exc}") from exc
        staged = self._staged(relative)
        start, end = header.pixel_start, header.pixel_end
        # text in a frame's codestream header (JPEG COM/APPn, J2K COM): zeros in place, same length
        blanks = text_segments(view, header.transfer_syntax, start, end)
        # the output's sha256 (for submission.json) is taken here, in parallel, from the bytes written
        output_digest = hashlib.sha256(head)
        if end > start:
            update_digest(output_digest, view, start, end, blanks)
        output_digest.update(tail)
        _write(staged, head, handle.fileno(), view, start, end, tail)
        blank_written(staged, len(head) - start, blanks)
        return Outcome(
            relative,
            size,
            digest,
            DEIDENTIFIED,
            staged=str(staged),
            output_path=_output_path(ids),
            output_sha256=output_digest.hexdigest(),
            sop_uid=ids["sop_uid"],
            crosswalk=identity.crosswalk,
            record=identity.record,
            unlisted=dict(self.cleaner.unlisted),
            unlinked=identity.unlinked,
            blanked=counts(blanks),
        )


def _complete(ds: Dataset) -> None:
    """Give the data set what the output needs and the input may legally or habitually lack.

    Some writers put the SOP class only in the file meta (Media Storage SOP Class UID); the output's
    data set needs it (SOP Common, Type 1), and so does the burned-in check. An absent Patient ID
    (Type 2) is added empty, so that it carries the pseudonym like any other.
    """
    meta = getattr(ds, "file_meta", None) or Dataset()
    for tag, keyword in _FROM_META:
        value = str(meta.get(keyword, "") or "").strip()
        if value and not ascii_values(ds, tag):
            ds[tag] = raw_text(tag, "UI", value)
    if _PATIENT_ID not in ds:
        ds[_PATIENT_ID] = raw_text(_PATIENT_ID, "LO", "")


def _output_path(ids: dict[str, str]) -> str:
    return f"dicom/{ids['patient_id']}/{ids['study_uid']}/{ids['series_uid']}/{ids['sop_uid']}.dcm"


def _write(staged: Path, head: bytes, source: int, data: Any, start: int, end: int, tail: bytes) -> None:
    """Write ``head``, the input's bytes ``start:end`` and ``tail`` to ``staged``.

    The pixel data goes file to file inside the kernel (``os.copy_file_range``: no copy through this
    process, a reflink on file systems that share blocks); where the call is not supported, it is
    written from ``data`` (the input's memory map).
    """
    global _COPY_FILE_RANGE
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        _write_all(fd, head)
        offset = start
        while _COPY_FILE_RANGE and offset < end:
            try:
                copied = os.copy_file_range(source, fd, end - offset, offset)
            except OSError as exc:
                if exc.errno not in _NO_COPY_RANGE:
                    raise
                _COPY_FILE_RANGE = False
                break
            if copied == 0:
                break  # the input shrank under us: write the rest from the map, as read
            offset += copied
        if offset < end:
            view = memoryview(data)
            try:
                _write_all(fd, view[offset:end])
            finally:
                view.release()
        _write_all(fd, tail)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        view.release()


#: errors meaning "copy_file_range cannot do this here" (not a failing disk): fall back to write
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}
_COPY_FILE_RANGE = hasattr(os, "copy_file_range")
_HASH_CHUNK = 1 << 16
_WORKER: Worker | None = None


def _quiet_exit(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


def init_worker(job: Job) -> None:
    """Process-pool initializer: build the per-process state once.

    Everything inherited from the parent at fork goes to the collector's permanent generation: the
    worker's garbage is per-file tuples and bytes, and full collections need not walk every imported
    module again (it also keeps the inherited pages shared rather than touched).

    The worker holds the key: it dies with the run (``kill -9`` included). Ctrl-C (a terminal sends
    SIGINT to the whole process group) ends it quietly: what it means is for the parent to say, once.
    """
    global _WORKER
    signal.signal(signal.SIGINT, _quiet_exit)
    die_with_parent()
    _WORKER = Worker(job)
    gc.freeze()


def run_chunk(relatives: list[str]) -> list[Outcome]:
    """Process a batch of files in this worker (one task per chunk, not per file)."""
    assert _WORKER is not None, "init_worker was not called"
    return [_WORKER.run(r) for r in relatives]
