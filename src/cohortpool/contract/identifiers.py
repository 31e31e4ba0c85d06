"""The identifiers every stage writes, reads or checks, each defined once.

A site id ends up in folder names, SQL parameters and pseudonym keys; a night in folder names and batch
ids; pseudonyms and UIDs in every released file. The hub checks what the site wrote with the same
patterns, so the two halves cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import re

#: 2-32 characters of a-z, 0-9 and _, starting with a letter (safe in paths, SQL and keys)
SITE_ID = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
#: a night is the calendar date of a site's drop, ``YYYY-MM-DD``
NIGHT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
#: ``P`` + 16 hex digits of a keyed HMAC (docs/data_contract.md section 2)
PATIENT_PSEUDONYM = re.compile(r"^P[0-9a-f]{16}$")
#: ``A`` + 16 hex digits of a keyed HMAC
ACCESSION_PSEUDONYM = re.compile(r"^A[0-9a-f]{16}$")
#: a DICOM UID: dot-separated numeric components (PS3.5 9.1); length checked apart (at most 64)
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
UID_MAX_CHARS = 64

SITE_ID_RULE = "2-32 characters of a-z, 0-9 and _, starting with a letter"


def is_site_id(value: str) -> bool:
    """True for a well-formed site id."""
    return bool(SITE_ID.match(value))


def check_site_id(value: str) -> str:
    """``value`` if it is a well-formed site id, else ValueError saying what a site id is."""
    if not is_site_id(value):
        raise ValueError(f"site_id {value!r} must be {SITE_ID_RULE}")
    return value


def is_night(value: str) -> bool:
    """True for ``YYYY-MM-DD`` that is a real calendar date."""
    if not NIGHT.match(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_uid(value: str) -> bool:
    """True for a syntactically valid DICOM UID (it may still be one a hostile file planted)."""
    return len(value) <= UID_MAX_CHARS and bool(UID.match(value))
