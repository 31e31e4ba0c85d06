"""Feature tables of a submission: the imaging manifest (from DICOM headers), the pseudonymised
clinical and reads tables, and the packaging of it all into ``submission.json``.

Stage packages never import each other, so the keyed pseudonyms come in as an argument (any object
with ``patient_id``, ``accession_id`` and ``shift_days``: :class:`cohortpool.deid.Pseudonymiser`),
and the manifest's per-instance rows come from :func:`instance_record`, which the de-identification
workers call on each original header.
"""

from cohortpool.features.kanon import BLOCKED_FILE, KAnonymity, ReleaseBlockedError, k_anonymity, withhold
from cohortpool.features.manifest import MANIFEST_COLUMNS, instance_record, sequence_family, write_manifest
from cohortpool.features.package import package_submission
from cohortpool.features.tables import (
    Keys,
    TableError,
    TableResult,
    WithdrawalError,
    generalisations,
    pseudonymise_tables,
)
from cohortpool.features.vocabulary import VocabularyError

__all__ = [
    "BLOCKED_FILE",
    "MANIFEST_COLUMNS",
    "KAnonymity",
    "Keys",
    "ReleaseBlockedError",
    "TableError",
    "TableResult",
    "VocabularyError",
    "WithdrawalError",
    "generalisations",
    "instance_record",
    "k_anonymity",
    "package_submission",
    "pseudonymise_tables",
    "sequence_family",
    "withhold",
    "write_manifest",
]
