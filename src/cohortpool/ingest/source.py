"""What a PACS source must offer the fetch: discover changed studies, list and retrieve instances.

Two implementations: :mod:`cohortpool.ingest.orthanc` (Orthanc's REST API: exact change log) and
:mod:`cohortpool.ingest.dicomweb` (any DICOMweb server: QIDO-RS with a date window, WADO-RS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StudyRef:
    """A study as the source names it (``key``: Orthanc id or StudyInstanceUID)."""

    key: str
    #: the study's instance count if the source told it during discovery (lets a held study be skipped)
    n_instances: int | None = None
    #: the StudyInstanceUID if known before listing (DICOMweb knows it, Orthanc's change log does not)
    study_uid: str | None = None


@dataclass(frozen=True)
class InstanceRef:
    """An instance to retrieve: its SOP instance UID and where the source serves it."""

    sop_instance_uid: str
    locator: str
    #: the UIDs, as the source listed them, that the locator is built from (DICOMweb: study, series,
    #: instance; Orthanc serves by its own id): when one is not a valid UID, the source may be unable to
    #: serve the instance by it, which is the instance's fault, not the source's
    addressed_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Discovery:
    """Studies changed since a watermark, and the watermark to store once they are all fetched."""

    studies: list[StudyRef]
    next_watermark: str


class Source(Protocol):
    """A PACS the fetch can pull from (see the two implementations)."""

    #: ``<protocol>:<URL without credentials>``: names the source in the state (its watermark) and messages
    key: str

    def discover(self, watermark: str | None, *, full: bool) -> Discovery:
        """Studies changed since ``watermark`` (everything when ``full`` or no watermark)."""
        ...

    def instances(self, study: StudyRef) -> list[InstanceRef] | None:
        """Instances of the study, or None if the study has gone from the source since discovery."""
        ...

    def retrieve(self, instance: InstanceRef) -> bytes:
        """The instance's DICOM Part 10 bytes, as stored by the source."""
        ...
