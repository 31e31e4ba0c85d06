"""What every stage must agree on, written once (docs/data_contract.md).

Like :mod:`cohortpool.config` this package imports nothing else of cohortpool, so stages can share it
without importing each other:

- :mod:`~cohortpool.contract.identifiers`: site id, night, pseudonym and UID patterns;
- :mod:`~cohortpool.contract.files`: the file and tree digests;
- :mod:`~cohortpool.contract.csvio`: spreadsheet safety, the CSV reader and writer;
- :mod:`~cohortpool.contract.tables`: the site tables' columns and their handling;
- :mod:`~cohortpool.contract.keys`: the consortium key's fingerprint;
- :mod:`~cohortpool.contract.seal`: the keyed MAC that seals ``submission.json``;
- :mod:`~cohortpool.contract.resources`: the SQL, suites and plans the package ships.
- :mod:`~cohortpool.contract.processes`: helper processes (workers, the Prefect server) die with their run.
- :mod:`~cohortpool.contract.erasure`: the hub's record of what it erased for withdrawn patients.
"""

from __future__ import annotations

import errno

from cohortpool.contract.tables import FINDINGS, READ_MODALITIES

#: write errors of the machine (disk full, quota, failing or read-only disk), never of the input: a
#: stage that meets one fails the run and quarantines nothing
MACHINE_ERRNOS: frozenset[int] = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})

__all__ = ["FINDINGS", "MACHINE_ERRNOS", "READ_MODALITIES"]
