"""A DICOM C-STORE receiver (pynetdicom) that a modality or PACS pushes a site's studies to.

Each received instance is stored exactly as it was encoded on the wire (no decode, no re-encode) as
``<landing>/<site_id>/<night>/dicom/<study>/<series>/<sop>.dcm``; the night is the local date of
reception unless one is given. Only the image storage SOP classes the study uses are accepted (CT, MR,
DX, CR and secondary capture, classic and enhanced), in the common uncompressed and compressed transfer
syntaxes; compressed pixel data is stored as received.

Memory stays bounded whatever the size of an instance: pynetdicom writes the data set to a temporary
file as its fragments arrive (``pynetdicom._config.STORE_RECV_CHUNKED_DATASET``, a process-wide option
this module turns on), and the complete file is renamed into the landing folder (copied only when the
temporary folder is on another file system; :func:`private_spool` keeps it on the landing's), so the
drop-folder scan never sees a half-written file. The disk is bounded by :class:`ListenerLimits`: an
instance past the maximum size, or past its association's maximum count or bytes, is answered 0xA700
(out of resources) and its partial file removed; an instance over the size limit stops growing on disk
as soon as it passes the limit, though the sender still sends the rest before it gets the answer.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pydicom import uid as dicom_uid
from pydicom.dataset import Dataset
from pynetdicom import AE, _config, evt
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from cohortpool.ingest.association import AssociationGuard, AssociationSummary, ListenerLimits
from cohortpool.ingest.errors import InvalidInstanceError
from cohortpool.ingest.store import (
    check_night,
    check_site_id,
    instance_path,
    place_atomic,
    today,
    uids_of_file,
)

log = logging.getLogger(__name__)

#: image storage SOP classes of the project (PS3.4 B.5): CT, MR, DX, CR, secondary capture
STORAGE_SOP_CLASSES: tuple[str, ...] = (
    dicom_uid.CTImageStorage,
    dicom_uid.EnhancedCTImageStorage,
    dicom_uid.LegacyConvertedEnhancedCTImageStorage,
    dicom_uid.MRImageStorage,
    dicom_uid.EnhancedMRImageStorage,
    dicom_uid.EnhancedMRColorImageStorage,
    dicom_uid.LegacyConvertedEnhancedMRImageStorage,
    dicom_uid.DigitalXRayImageStorageForPresentation,
    dicom_uid.DigitalXRayImageStorageForProcessing,
    dicom_uid.ComputedRadiographyImageStorage,
    dicom_uid.SecondaryCaptureImageStorage,
    dicom_uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    dicom_uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    dicom_uid.MultiFrameSingleBitSecondaryCaptureImageStorage,
    dicom_uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
)

#: transfer syntaxes accepted: uncompressed, deflate, and the JPEG family and RLE that modalities send
TRANSFER_SYNTAXES: tuple[str, ...] = (
    dicom_uid.ExplicitVRLittleEndian,
    dicom_uid.ImplicitVRLittleEndian,
    dicom_uid.DeflatedExplicitVRLittleEndian,
    dicom_uid.ExplicitVRBigEndian,
    dicom_uid.JPEGBaseline8Bit,
    dicom_uid.JPEGExtended12Bit,
    dicom_uid.JPEGLossless,
    dicom_uid.JPEGLosslessSV1,
    dicom_uid.JPEGLSLossless,
    dicom_uid.JPEGLSNearLossless,
    dicom_uid.JPEG2000Lossless,
    dicom_uid.JPEG2000,
    dicom_uid.RLELossless,
)

#: the largest PDU this receiver accepts (PS3.8 9.3.1 lets the receiver choose; 0 would mean unlimited)
MAX_PDU_BYTES = 256 * 1024

# C-STORE statuses (PS3.4 B.2.3)
_SUCCESS = 0x0000
_OUT_OF_RESOURCES = 0xA700
_DOES_NOT_MATCH = 0xA900
_CANNOT_UNDERSTAND = 0xC000


@dataclass
class ListenerStats:
    """Counters of a running listener (thread-safe: associations are served in parallel)."""

    stored: int = 0
    rejected: int = 0
    bytes: int = 0
    associations: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, stored: int = 0, rejected: int = 0, nbytes: int = 0, associations: int = 0) -> None:
        with self._lock:
            self.stored += stored
            self.rejected += rejected
            self.bytes += nbytes
            self.associations += associations


class Listener:
    """A running C-STORE receiver; :meth:`stop` shuts it down (ongoing writes finish first)."""

    def __init__(self, ae: AE, server: Any, ae_title: str, stats: ListenerStats):
        self._ae = ae
        self._server = server
        self.ae_title = ae_title
        self.stats = stats
        host, port = server.server_address[:2]
        self.host: str = host
        self.port: int = port

    def stop(self) -> None:
        """Stop accepting, close the socket and wait for the association threads."""
        self._server.shutdown()
        self._ae.shutdown()


def start_listener(
    landing: Path,
    site_id: str,
    *,
    port: int = 11112,
    host: str = "127.0.0.1",
    ae_title: str = "COHORTPOOL",
    night: str | None = None,
    allowed_aets: Sequence[str] = (),
    fsync: bool = True,
    limits: ListenerLimits | None = None,
    on_association: Callable[[AssociationSummary], None] | None = None,
) -> Listener:
    """Start receiving in background threads and return at once (``port=0`` picks a free port).

    Parameters
    ----------
    landing, site_id
        Instances land in ``<landing>/<site_id>/<night>/dicom/``.
    port, host
        Where to listen. The default host is loopback; pass ``0.0.0.0`` (or the hospital-network
        address) for modalities on other machines, behind the site's firewall.
    ae_title
        This receiver's AE title (senders must call it; others are rejected by pynetdicom).
    night
        A fixed night folder; by default the local date at the moment each instance arrives.
    allowed_aets
        If given, only these calling AE titles may store (the PACS and modalities of the site).
    fsync
        Flush every instance to disk before answering success (off only in tests).
    limits
        The maximum instance size and what one association may store (:class:`ListenerLimits`).
    on_association
        Called with the counts of each association when it ends (from the association's thread).
    """
    check_site_id(site_id)
    if night is not None:
        check_night(night)
    if not 1 <= len(ae_title) <= 16:
        raise ValueError(f"AE title {ae_title!r} must be 1-16 characters (PS3.5 6.2)")
    stats = ListenerStats()
    ae = AE(ae_title=ae_title)
    # senders cut the data set into PDUs of at most this size; pynetdicom's default (16 KiB) costs a
    # Python round per 16 KiB, which halves the throughput of large instances (benchmarks/RESULTS.md);
    # a few copies of one 256 KiB PDU per association is all the memory it takes
    ae.maximum_pdu_size = MAX_PDU_BYTES
    # a storage SCP must answer C-ECHO too: it is how a PACS administrator tests the connection
    ae.add_supported_context(Verification)
    for sop_class in STORAGE_SOP_CLASSES:
        ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
    ae.require_called_aet = True
    if allowed_aets:
        ae.require_calling_aet = list(allowed_aets)
    # process-wide (pynetdicom reads it per message): every C-STORE this process receives is written
    # to a temporary file as it arrives instead of being collected in memory
    _config.STORE_RECV_CHUNKED_DATASET = True
    receiver = _Receiver(
        Path(landing), site_id, night, fsync, stats, limits or ListenerLimits(), on_association
    )
    server = ae.start_server((host, port), block=False, evt_handlers=receiver.handlers())
    listener = Listener(ae, server, ae_title, stats)
    log.info("C-STORE receiver %s listening on %s:%d", ae_title, listener.host, listener.port)
    return listener


def serve(
    landing: Path,
    site_id: str,
    *,
    port: int = 11112,
    host: str = "127.0.0.1",
    ae_title: str = "COHORTPOOL",
    night: str | None = None,
    allowed_aets: Sequence[str] = (),
    fsync: bool = True,
    limits: ListenerLimits | None = None,
    on_association: Callable[[AssociationSummary], None] | None = None,
    on_ready: Callable[[Listener], None] | None = None,
    on_tick: Callable[[ListenerStats], None] | None = None,
    stop: threading.Event | None = None,
) -> ListenerStats:
    """Receive until Ctrl-C, SIGTERM or ``stop`` is set; return the final counters.

    ``on_ready`` is called once listening (with the actual port), ``on_tick`` about twice a second;
    the other parameters are :func:`start_listener`'s.
    SIGTERM is honoured only when called from the main thread (where Python delivers signals).
    """
    listener = start_listener(
        landing,
        site_id,
        port=port,
        host=host,
        ae_title=ae_title,
        night=night,
        allowed_aets=allowed_aets,
        fsync=fsync,
        limits=limits,
        on_association=on_association,
    )
    stop = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():

        def _on_sigterm(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if on_ready is not None:
            on_ready(listener)
        while not stop.wait(0.5):
            if on_tick is not None:
                on_tick(listener.stats)
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return listener.stats


def _status(code: int, comment: str) -> Dataset:
    """A C-STORE response status with an Error Comment (LO, at most 64 characters) for the sender's log."""
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]
    return status


def _spool_file(assoc: Any) -> Any | None:
    """The temporary file pynetdicom is writing an arriving data set into, or None.

    pynetdicom names that file only once the instance is complete (``Event.dataset_path``); while it
    arrives it is the ``_data_set_file`` of the DIMSE message being decoded (pynetdicom 2.0 to 3.x).
    It is used for one thing: to stop an instance over the limits from growing on disk. Should a
    pynetdicom release rename it, the limits still hold once the instance is complete (the handler
    checks the size) and only that bound is lost, which the listener's limit tests detect.
    """
    message = getattr(getattr(assoc, "dimse", None), "message", None)
    return getattr(message, "_data_set_file", None)


class _Receiver:
    """The listener's event handlers: per-association limits and counters, and the C-STORE handler."""

    def __init__(
        self,
        landing: Path,
        site_id: str,
        night: str | None,
        fsync: bool,
        stats: ListenerStats,
        limits: ListenerLimits,
        on_association: Callable[[AssociationSummary], None] | None,
    ):
        self.landing, self.site_id, self.night, self.fsync = landing, site_id, night, fsync
        self.stats, self.limits, self.on_association = stats, limits, on_association
        self._guards: dict[int, AssociationGuard] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def handlers(self) -> list[evt.EventHandlerType]:
        return [
            (evt.EVT_ESTABLISHED, self.established),
            (evt.EVT_PDU_RECV, self.pdu_received),
            (evt.EVT_C_STORE, self.store),
            (evt.EVT_RELEASED, self.released),
            (evt.EVT_ABORTED, self.aborted),
            (evt.EVT_CONN_CLOSE, self.closed),
        ]

    def _guard(self, assoc: Any) -> AssociationGuard:
        with self._lock:
            guard = self._guards.get(id(assoc))
            if guard is None:
                guard = self._guards[id(assoc)] = AssociationGuard(next(self._numbers), self.limits)
            return guard

    def established(self, event: Any) -> None:
        self._guard(event.assoc)

    def pdu_received(self, event: Any) -> None:
        """Before each P-DATA PDU is written: cut an instance off once it is past a limit.

        Runs in the thread that then writes the PDU's fragments, so the file is truncated to nothing
        before each further fragment: it never holds more than the limit plus one PDU.
        """
        if not isinstance(event.pdu, P_DATA_TF):
            return
        spool = _spool_file(event.assoc)
        if spool is None:
            return
        guard = self._guard(event.assoc)
        guard.spool = spool.name
        if guard.check_partial(spool.name, spool.tell()) is not None:
            spool.seek(0)
            spool.truncate()

    def store(self, event: Any) -> int | Dataset:
        """EVT_C_STORE: place the complete instance, or refuse it with a status the sender understands."""
        guard = self._guard(event.assoc)
        spool = Path(event.dataset_path)
        try:
            return self._store(guard, event, spool)
        finally:
            guard.spool = None
            spool.unlink(missing_ok=True)  # refused or failed: nothing of it stays (placed: already gone)

    def _store(self, guard: AssociationGuard, event: Any, spool: Path) -> int | Dataset:
        peer = f"C-STORE from AE {event.assoc.requestor.ae_title!r}"
        size = spool.stat().st_size
        reason = guard.check_complete(str(spool), size)
        if reason is not None:
            log.warning("refused: %s: %s", peer, reason)
            self._refused(guard)
            return _status(_OUT_OF_RESOURCES, reason)
        try:
            uids = uids_of_file(spool, peer)
        except InvalidInstanceError as exc:
            log.warning("rejected: %s", exc)
            self._refused(guard)
            return _CANNOT_UNDERSTAND
        if uids.sop_instance != str(event.request.AffectedSOPInstanceUID):
            log.warning("rejected: %s: the data set's SOPInstanceUID differs from the request's", peer)
            self._refused(guard)
            return _DOES_NOT_MATCH
        try:
            target = instance_path(self.landing, self.site_id, self.night or today(), uids)
            place_atomic(spool, target, fsync=self.fsync)
        except OSError as exc:
            # disk full or no permission: tell the sender to retry later rather than lose the instance
            log.error(
                "%s: could not write into %s (%s); check space and permissions", peer, self.landing, exc
            )
            self._refused(guard)
            return _OUT_OF_RESOURCES
        guard.count(stored=1, nbytes=size)
        self.stats.add(stored=1, nbytes=size)
        return _SUCCESS

    def _refused(self, guard: AssociationGuard) -> None:
        guard.count(refused=1)
        self.stats.add(rejected=1)

    def released(self, event: Any) -> None:
        self._guard(event.assoc).ended = "released"

    def aborted(self, event: Any) -> None:
        self._guard(event.assoc).ended = "aborted"

    def closed(self, event: Any) -> None:
        """The connection is gone: remove a half-received instance, report the association's counts."""
        with self._lock:
            guard = self._guards.pop(id(event.assoc), None)
        if guard is None:  # rejected before it was established (AE title): nothing was received
            return
        # the instance being received when the connection went: the one a P-DATA PDU named, and the
        # file pynetdicom opened on the command alone (a sender that said a data set follows and sent
        # none, or died before its first data PDU, left it in the spool for the listener's lifetime)
        pending = _spool_file(event.assoc)
        for name in {guard.spool, getattr(pending, "name", None)} - {None}:
            Path(str(name)).unlink(missing_ok=True)
        summary = guard.summary()
        self.stats.add(associations=1)
        log.debug("%s", summary.line())
        if self.on_association is not None:
            self.on_association(summary)


@contextlib.contextmanager
def private_spool(landing: Path) -> Iterator[Path]:
    """Make a hidden folder of ``landing`` this process's temporary folder while receiving.

    pynetdicom writes each arriving instance to a file in the process's temporary folder (the
    ``tempfile`` default, a process-wide setting, hence a context manager for the process that
    listens). Inside the landing folder the complete instance is renamed into place, never copied,
    and never fills a RAM-backed ``/tmp``. The folder (0700, named for the process id) is removed on
    exit; one left by a killed listener is removed by the next.
    """
    landing = Path(landing)
    landing.mkdir(parents=True, exist_ok=True)
    for stale in landing.glob(".listen-spool-*"):
        pid = stale.name.rsplit("-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    spool = landing / f".listen-spool-{os.getpid()}"
    spool.mkdir(mode=0o700, exist_ok=True)
    previous = tempfile.tempdir
    tempfile.tempdir = str(spool)
    try:
        yield spool
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(spool, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
