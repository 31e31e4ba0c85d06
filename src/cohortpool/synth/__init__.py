"""The synthetic consortium: what hospitals actually send, for the demo, the tests and the benchmarks.

``write_consortium`` writes one night's drop per site (DICOM full of PHI, ``clinical.csv``, ``reads.csv``),
site 1 reproducing the reference study (``vcf_paper.md``), and ``_truth.json`` listing planted defects.
"""

from cohortpool.synth.writer import DEFAULT_NIGHT, TRUTH_FILE, write_consortium

__all__ = ["DEFAULT_NIGHT", "TRUTH_FILE", "write_consortium"]
