"""Report: result tables and figures as one self-contained HTML file, CSV, XLSX and SPSS exports.

Reads :class:`cohortpool.stats.ResultTable` objects and DataFrames, never the warehouse (the CLI and the
flow fetch). Entry point :func:`cohortpool.report.build.write_report`; small-cell suppression for outputs
that leave the hub in :mod:`~cohortpool.report.release` (which counts: :mod:`~cohortpool.report.cells`;
which to hide: :mod:`~cohortpool.report.suppression`).
"""
