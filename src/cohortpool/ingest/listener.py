"""A DICOM C-STORE receiver (pynetdicom) that a modality or PACS pushes a site's studies to.

Each received instance is written, exactly as it was encoded on the wire (no decode, no re-encode),
into ``<landing>/<site_id>/<night>/dicom/<study>/<series>/<sop>.dcm`` with :func:`store.write_atomic`,
so the drop-folder scan never picks up a half-written file. The night is the local date of reception
unless one is given. Only the image storage SOP classes the study uses are accepted (CT, MR, DX, CR and
secondary capture, classic and enhanced), in the common uncompressed and compressed transfer syntaxes;
compressed pixel data is stored as received.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pydicom import uid as dicom_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from cohortpool.ingest.errors import InvalidInstanceError
from cohortpool.ingest.store import check_night, check_site_id, instance_path, today, uids_of, write_atomic

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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, stored: int = 0, rejected: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.stored += stored
            self.rejected += rejected
            self.bytes += nbytes


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
    """
    check_site_id(site_id)
    if night is not None:
        check_night(night)
    if not 1 <= len(ae_title) <= 16:
        raise ValueError(f"AE title {ae_title!r} must be 1-16 characters (PS3.5 6.2)")
    stats = ListenerStats()
    ae = AE(ae_title=ae_title)
    # a storage SCP must answer C-ECHO too: it is how a PACS administrator tests the connection
    ae.add_supported_context(Verification)
    for sop_class in STORAGE_SOP_CLASSES:
        ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
    ae.require_called_aet = True
    if allowed_aets:
        ae.require_calling_aet = list(allowed_aets)
    handler = _store_handler(Path(landing), site_id, night, fsync, stats)
    server = ae.start_server((host, port), block=False, evt_handlers=[(evt.EVT_C_STORE, handler)])
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
    on_ready: Callable[[Listener], None] | None = None,
    on_tick: Callable[[ListenerStats], None] | None = None,
    stop: threading.Event | None = None,
) -> ListenerStats:
    """Receive until Ctrl-C, SIGTERM or ``stop`` is set; return the final counters.

    ``on_ready`` is called once listening (with the actual port), ``on_tick`` about twice a second.
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


def _store_handler(
    landing: Path, site_id: str, night: str | None, fsync: bool, stats: ListenerStats
) -> Callable[[Any], int]:
    """The EVT_C_STORE handler: write the instance as received, answer a status the sender understands."""

    def handle(event: Any) -> int:
        peer = f"C-STORE from AE {event.assoc.requestor.ae_title!r}"
        try:
            data: bytes = bytes(event.encoded_dataset())
            uids = uids_of(data, peer)
        except InvalidInstanceError as exc:
            log.warning("rejected: %s", exc)
            stats.add(rejected=1)
            return _CANNOT_UNDERSTAND
        if uids.sop_instance != str(event.request.AffectedSOPInstanceUID):
            log.warning("rejected: %s: the data set's SOPInstanceUID differs from the request's", peer)
            stats.add(rejected=1)
            return _DOES_NOT_MATCH
        try:
            write_atomic(instance_path(landing, site_id, night or today(), uids), data, fsync=fsync)
        except OSError as exc:
            # disk full or no permission: tell the sender to retry later rather than lose the instance
            log.error("%s: could not write into %s (%s); check space and permissions", peer, landing, exc)
            stats.add(rejected=1)
            return _OUT_OF_RESOURCES
        stats.add(stored=1, nbytes=len(data))
        return _SUCCESS

    return handle
