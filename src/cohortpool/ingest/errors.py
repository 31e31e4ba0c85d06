"""Errors of the ingest stage: each names the source or file at fault and what to do."""

from __future__ import annotations


class IngestError(RuntimeError):
    """Something the ingest stage cannot work around (bad landing folder, bad state, bad source)."""


class SourceError(IngestError):
    """A PACS or DICOMweb source failed or answered something unusable (the message names the URL)."""


class InvalidInstanceError(IngestError):
    """A received or fetched DICOM instance cannot be stored (unreadable, or UIDs unusable as names)."""


class SiteFolderError(IngestError):
    """A configured site's landing folder is missing or cannot be read: the site fails, the others run."""
