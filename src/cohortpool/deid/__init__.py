"""Site-edge de-identification: the DICOM PS3.15 Annex E profile as data, keyed pseudonyms,
deterministic UIDs, header-only parsing with pixel data streamed through, and the site vault.

Public API (what the CLI and the Prefect tasks call): :func:`deidentify_tree`, :class:`DeidResult`,
:class:`Pseudonymiser`, :func:`load_profile`.
"""

from cohortpool.deid.ledger import (
    DEIDENTIFIED,
    DUPLICATE,
    QUARANTINED,
    KeyMismatchError,
    LedgerRow,
    Vault,
    VaultError,
    check_vault,
    check_vault_key,
)
from cohortpool.deid.profile import EDITION, OPTIONS, Profile, load_profile
from cohortpool.deid.pseudonym import Pseudonymiser
from cohortpool.deid.run import DeidResult, deidentify_tree, list_inputs
from cohortpool.deid.uids import UidMapper

__all__ = [
    "DEIDENTIFIED",
    "DUPLICATE",
    "EDITION",
    "OPTIONS",
    "QUARANTINED",
    "DeidResult",
    "KeyMismatchError",
    "LedgerRow",
    "Profile",
    "Pseudonymiser",
    "UidMapper",
    "Vault",
    "VaultError",
    "check_vault",
    "check_vault_key",
    "deidentify_tree",
    "list_inputs",
    "load_profile",
]
