"""Ingest: bring a site's new DICOM studies into its landing folder, and find what is left to process.

Three ways in, one landing shape (``<landing>/<site_id>/<YYYY-MM-DD>/dicom/``, data contract section 1):

- a drop folder the hospital exports into: :func:`scan_landing` lists the nights not processed yet (or
  re-delivered with different content), :func:`mark_processed` records one as done;
- a PACS: :func:`fetch_new_studies` pulls what changed since the last successful run from Orthanc's REST
  API or any DICOMweb server;
- a C-STORE receiver: :func:`cohortpool.ingest.listener.serve` (``cohortpool listen``).

Every function takes plain arguments and returns a dataclass, so a Prefect task can wrap it in one line;
nothing here imports Prefect.
"""

from __future__ import annotations

from cohortpool.ingest.dropfolder import LandingScan, SiteNight, mark_processed, scan_landing, scan_sites
from cohortpool.ingest.errors import IngestError, InvalidInstanceError, SiteFolderError, SourceError
from cohortpool.ingest.fetch import FetchResult, fetch_new_studies

__all__ = [
    "FetchResult",
    "IngestError",
    "InvalidInstanceError",
    "LandingScan",
    "SiteFolderError",
    "SiteNight",
    "SourceError",
    "fetch_new_studies",
    "mark_processed",
    "scan_landing",
    "scan_sites",
]
