"""cohortpool: pool imaging cohorts across hospitals, from DICOM export to a report researchers can trust."""

import os

from cohortpool.config import disable_telemetry

__version__ = "0.1.0"

# Every entry point imports this package first, so phone-home is off before Prefect or GX load.
disable_telemetry()

# Arrow's default allocator (mimalloc) keeps the memory of freed chunks in arenas it does not give back to
# the system: about 50 MB more at the peak of a 10^6-row validation and after it, which GX's pages are
# then rendered beside (benchmarks/RESULTS.md, "Table memory"). The C library's allocator gives it back
# (cohortpool.validate.frames.release_memory). Read when Arrow first allocates; a process that chose
# another allocator keeps its choice.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
