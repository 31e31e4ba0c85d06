"""The seal on ``submission.json``: a keyed MAC that only holders of the consortium secret can make.

``submission.json`` vouches for every file of a submission (sha256 and size), its counts and its release
risk. Without a seal anyone who can write to a submission (the SFTP account, a disk at either end) could
edit a table, fix its sha256 in ``submission.json`` and have it admitted, and the self-declared
``key_fingerprint`` would say nothing about the key the submission was really made with. The site seals
the file when it packages; the hub, which holds the same secret, recomputes the seal and refuses what
does not match.

- key: HMAC-SHA256(secret, ``cohortpool submission mac v1``), its own label, so the seal key is neither
  the pseudonym key nor the key fingerprint;
- message: the canonical bytes of ``submission.json`` without its ``mac`` field (JSON, keys sorted,
  2-space indent, ASCII, one trailing newline: the form cohortpool writes);
- ``mac``: 64 lower-case hex characters of HMAC-SHA256(key, message).

No timestamp or nonce: the same document and secret give the same seal (byte-identical submissions).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

#: the field of ``submission.json`` holding the seal
MAC_FIELD = "mac"
#: the fixed message the seal key is derived with; changing it changes every seal
_LABEL = b"cohortpool submission mac v1"


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """``document`` as cohortpool writes ``submission.json`` (sorted keys, 2-space indent, ASCII, newline)."""
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def submission_mac(secret: bytes, document: Mapping[str, Any]) -> str:
    """The seal of ``document`` under the consortium ``secret`` (its ``mac`` field, if any, left out)."""
    unsealed = {key: value for key, value in document.items() if key != MAC_FIELD}
    key = hmac.new(secret, _LABEL, hashlib.sha256).digest()
    return hmac.new(key, canonical_bytes(unsealed), hashlib.sha256).hexdigest()


def sealed(secret: bytes, document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with its seal in ``mac``."""
    return {**document, MAC_FIELD: submission_mac(secret, document)}


def seal_matches(secret: bytes, document: Mapping[str, Any]) -> bool:
    """True when ``document`` carries the seal ``secret`` gives it (compared in constant time)."""
    found = document.get(MAC_FIELD)
    if not isinstance(found, str):
        return False
    return hmac.compare_digest(found.encode("ascii", "replace"), submission_mac(secret, document).encode())
