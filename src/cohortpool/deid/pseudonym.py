"""Keyed pseudonyms and per-patient date shifts: the one place identifiers are derived.

Both the DICOM path (:mod:`cohortpool.deid.actions`) and the CSV pseudonymiser
(:mod:`cohortpool.features.tables`, handed a :class:`Pseudonymiser` by the caller) use these
functions, so images and tables link. Formats are fixed by ``docs/data_contract.md`` section 2:

- ``patient_id`` = ``P`` + first 16 hex digits (upper case) of HMAC-SHA256(secret, site_id + MRN);
- ``accession_id`` = ``A`` + first 16 hex digits of HMAC-SHA256(secret, site_id + accession number);
- date shift = a keyed offset in ``[-max_days, -1]`` days per (site, patient), so intervals within a
  patient are preserved but calendar dates are not;
- an instance without a Patient ID (Type 2 in the Patient Module: empty is legal) gets the same
  functions keyed on :func:`unlinked_key` of its Study Instance UID: one pseudonym per study, which
  links the study's instances but no other study (nothing says which patient it is).

HMAC (RFC 2104) with the consortium secret makes the mapping stable across nights and files,
different across sites for the same local MRN (the site id is part of the message), and not
reversible without the key or the site's vault crosswalk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

_DATE_SHIFT_LABEL = b"cohortpool/date-shift/v1\x00"
_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DA_LEGACY = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
#: what may follow a DT's date (PS3.5 Table 6.2-1): HH, MM, SS, a fraction of up to 6 digits, a UTC offset
_DT_AFTER_DATE = re.compile(r"([0-9]{2}([0-9]{2}([0-9]{2}(\.[0-9]{1,6})?)?)?)?([+-][0-9]{4})?", re.ASCII)


@lru_cache(maxsize=65536)  # a patient's MRN and accession recur in every instance of a study
def _hmac(secret: bytes, message: str | bytes) -> bytes:
    data = message.encode("utf-8") if isinstance(message, str) else message
    return hmac.new(secret, data, hashlib.sha256).digest()


@dataclass(frozen=True)
class Pseudonymiser:
    """Keyed pseudonyms for one site.

    Parameters
    ----------
    secret
        The consortium secret (``Settings.secret_bytes()``); never logged or written.
    site_id
        The site whose local identifiers are pseudonymised; part of every HMAC message.
    max_shift_days
        Date shifts fall in ``[-max_shift_days, -1]``.
    """

    secret: bytes
    site_id: str
    max_shift_days: int = 365

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("the consortium secret is empty")
        if self.max_shift_days < 1:
            raise ValueError(f"max_shift_days must be >= 1, got {self.max_shift_days}")

    def __repr__(self) -> str:  # never show the secret in tracebacks or logs
        return f"Pseudonymiser(site_id={self.site_id!r}, max_shift_days={self.max_shift_days})"

    def patient_id(self, mrn: str) -> str:
        """``P`` + 16 hex digits for a local MRN (leading/trailing blanks ignored)."""
        digest = _hmac(self.secret, self.site_id + mrn.strip()).hex()
        return "P" + digest[:16].upper()

    def accession_digest(self, accession: str) -> str:
        """The 16 hex digits of an accession pseudonym (fits DICOM SH, 16 characters)."""
        return _hmac(self.secret, self.site_id + accession.strip()).hex()[:16].upper()

    def accession_id(self, accession: str) -> str:
        """``A`` + 16 hex digits for a local accession number."""
        return "A" + self.accession_digest(accession)

    def shift_days(self, mrn: str) -> int:
        """This patient's keyed date offset in days, in ``[-max_shift_days, -1]``."""
        message = _DATE_SHIFT_LABEL + f"{self.site_id}\x00{mrn.strip()}".encode()
        value = int.from_bytes(_hmac(self.secret, message)[:8], "big")
        return -(1 + value % self.max_shift_days)


#: the local key of a study without a Patient ID starts with a NUL, which no MRN holds (LO excludes
#: control characters), so it can never collide with a real patient's
_UNLINKED_PREFIX = "\x00study:"


def unlinked_key(study_uid: str) -> str:
    """The local key standing in for a missing MRN: derived from the study (see the module docstring)."""
    return _UNLINKED_PREFIX + study_uid.strip()


def parse_date(text: str) -> dt.date | None:
    """A DICOM DA (``YYYYMMDD`` or the legacy ``YYYY.MM.DD``) or ISO date, else ``None``."""
    text = text.strip()
    match = _DA.match(text) or _DA_LEGACY.match(text) or _ISO.match(text)
    if match is None:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


@lru_cache(maxsize=65536)  # a patient's few dates recur in every instance's header
def shift_da(value: str, days: int) -> str | None:
    """Shift a DICOM DA value; ``None`` when it is not a full date (the caller removes it)."""
    date = parse_date(value)
    if date is None:
        return None
    try:
        return (date + dt.timedelta(days=days)).strftime("%Y%m%d")
    except OverflowError:
        return None


def shift_dt(value: str, days: int) -> str | None:
    """Shift the date part of a DICOM DT value, keeping time and UTC offset.

    Values with less than a full date (``YYYY`` or ``YYYYMM``) cannot be shifted without
    inventing precision, so they return ``None`` and are removed.
    """
    text = value.strip()
    if len(text) < 8 or not _DT_AFTER_DATE.fullmatch(text[8:]):
        return None  # the time part is kept as written: it must be a time, not text after a date
    head = shift_da(text[:8], days)
    return None if head is None else head + text[8:]
