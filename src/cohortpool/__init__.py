"""cohortpool: pool imaging cohorts across hospitals, from DICOM export to a report researchers can trust."""

from cohortpool.config import disable_telemetry

__version__ = "0.1.0"

# Every entry point imports this package first, so phone-home is off before Prefect or GX load.
disable_telemetry()
