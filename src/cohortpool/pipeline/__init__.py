"""The composition layer: the one place where stages are chained, one plain function per hop.

::

    flows/ -> cohortpool.tasks -> cohortpool.pipeline -> stages -> cohortpool.contract

- :mod:`~cohortpool.pipeline.site`: landing scan, PACS fetch, site night -> submission;
- :mod:`~cohortpool.pipeline.hub`: submission -> validated batch -> warehouse, checks across sites;
- :mod:`~cohortpool.pipeline.transfer`: push a site's queue, receive the hub's inbox, verify a submission
  before it is validated (refused ones go to ``OUT/rejected``);
- :mod:`~cohortpool.pipeline.deployments`: the consortium's work pools and deployments, planned from the
  site registry (``cohortpool deploy``);
- :mod:`~cohortpool.pipeline.report`: warehouse -> report;
- :mod:`~cohortpool.pipeline.runconfig`: the run's configuration, read once, and the key check;
- :mod:`~cohortpool.pipeline.layout` and :mod:`~cohortpool.pipeline.records`: where a run writes and
  what each step returns (PHI-free records, the night's summary and exit code).

No Prefect here: the flows and the CLI call the same functions, so a submission or a report is the same
bytes whichever way it was made. Submodules are imported where used (stages pull in pydicom, Great
Expectations, DuckDB and matplotlib), so importing this package costs nothing.
"""
