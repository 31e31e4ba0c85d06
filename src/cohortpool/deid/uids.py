"""Deterministic replacement UIDs in the ``2.25`` (UUID-derived) root.

A UID is replaced by ``2.25.<integer>`` where the integer is the first 128 bits of a keyed
HMAC-SHA256 of the original UID (PS3.5 section 9.2 and B.2 allow a UUID as a decimal integer under
``2.25``; 128 bits give at most 39 digits, so the result is at most 44 characters, within the
64 of the UI VR). The same original UID gives the same new UID in every file, night and worker, so
references between instances (series, frame of reference, referenced SOP instances) stay intact;
without the secret the mapping cannot be reversed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

from pydicom._uid_dict import UID_dictionary

_UID_LABEL = b"cohortpool/uid/v1\x00"

#: UIDs under this root are defined by the standard (SOP classes, transfer syntaxes, coding
#: schemes): they identify no one and must be kept, or the files stop meaning anything.
WELL_KNOWN_ROOT = "1.2.840.10008."
#: a UID's form (PS3.5 section 9.1): numeric components without leading zeros, 64 characters at most
_UID_FORM = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")

#: the implementation class UID written into every output's file meta (fixed, derived once from
#: the project name the same way as any other 2.25 UID, so it is stable across releases)
IMPLEMENTATION_CLASS_UID = "2.25." + str(
    int.from_bytes(hashlib.sha256(b"cohortpool implementation class").digest()[:16], "big")
)
IMPLEMENTATION_VERSION_NAME = "COHORTPOOL_010"


class UidMapper:
    """Map original UIDs to keyed ``2.25`` UIDs (cached per process)."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the consortium secret is empty")
        self._secret = secret
        self.map = lru_cache(maxsize=65536)(self._map)

    def __repr__(self) -> str:
        return "UidMapper(<secret hidden>)"

    def _map(self, uid: str) -> str:
        """The keyed replacement of an instance's UID; a UID the standard registers stays (a well-known
        frame of reference, say). Anything else is replaced, under the standard's root too: devices
        have built instance UIDs by appending to a SOP class UID, digits of a record number included,
        and a value that is not a UID at all (``../../x``) must never become a file or folder name."""
        uid = uid.strip().rstrip("\x00").strip()
        if not uid or uid in UID_dictionary:
            return uid
        digest = hmac.new(self._secret, _UID_LABEL + uid.encode("ascii", "replace"), hashlib.sha256)
        return "2.25." + str(int.from_bytes(digest.digest()[:16], "big"))


def is_uid(text: str) -> bool:
    """``text`` has a UID's form (digits and dots, no leading zeros, 64 characters at most)."""
    return len(text) <= 64 and _UID_FORM.fullmatch(text) is not None


def is_well_known(uid: str) -> bool:
    """True for a UID the standard defines (kept unchanged where the table does not name the
    attribute: SOP classes, transfer syntaxes, coding schemes): one pydicom's registry of PS3.6 lists,
    or a well-formed UID under the standard's root (a class newer than the registry)."""
    uid = uid.strip()
    return uid in UID_dictionary or (uid.startswith(WELL_KNOWN_ROOT) and is_uid(uid))
