"""The consortium key's public name: a fingerprint every site and the hub can compare.

Every pseudonym, UID and date shift is keyed with the consortium secret. A site that runs with a mistyped
key produces a second, unlinkable set of pseudonyms for the same patients, and nothing in the data says
so. The fingerprint makes the key comparable without revealing it: it is an HMAC of a fixed label under
the key, so it tells two keys apart but gives nothing that helps guess the key (HMAC-SHA256 is a PRF).
It is printed by ``cohortpool config``, written into every ``submission.json``, recorded in each vault
and may be pinned per site in the registry.
"""

from __future__ import annotations

import hashlib
import hmac

#: the fixed message the fingerprint is the keyed hash of; changing it changes every fingerprint
_LABEL = b"cohortpool key fingerprint v1"
#: hex characters shown: 64 bits tell keys apart and stay readable on one line
FINGERPRINT_CHARS = 16


def key_fingerprint(secret: bytes) -> str:
    """The fingerprint of ``secret``: 16 lower-case hex characters, the same at every site."""
    return hmac.new(secret, _LABEL, hashlib.sha256).hexdigest()[:FINGERPRINT_CHARS]
