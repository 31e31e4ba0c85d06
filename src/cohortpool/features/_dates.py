"""ISO date helpers for the tables (the DICOM side has its own DA/DT forms in the deid stage).

A table date is exactly ``YYYY-MM-DD`` in ASCII digits (blanks around it ignored), a calendar date from
0001-01-01 to 9999-12-31: what the data contract says and what the hub's suites accept
(``strptime("%Y-%m-%d")`` of the released, shifted date). ``date.fromisoformat`` is not used: since
Python 3.11 it also takes ISO week dates (``2022-W37-4``), ordinal dates and ``20220915``, which a
site did not mean as ``YYYY-MM-DD``. Arithmetic on a date can leave the calendar (``0001-01-05``
shifted back a week): it gives None, never an ``OverflowError``.
"""

from __future__ import annotations

import datetime as dt
import re

#: the one written form of a table date
ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def parse_iso(text: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` date (ASCII digits, a real calendar date), or ``None``."""
    match = ISO_DATE.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day = (int(part) for part in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:  # year 0000, month 13, February 30, ...
        return None


def shift_date(date: dt.date, days: int) -> dt.date | None:
    """``date`` moved by whole days; ``None`` when that leaves the calendar (before year 1, after 9999)."""
    try:
        return date + dt.timedelta(days=days)
    except OverflowError:
        return None


def shift_iso(text: str, days: int) -> str | None:
    """Shift an ISO date by whole days; ``None`` when it does not parse or cannot be shifted (never pass
    it through)."""
    date = parse_iso(text)
    shifted = None if date is None else shift_date(date, days)
    return None if shifted is None else shifted.isoformat()


def age_years(birth: str, on: str) -> int | None:
    """Completed years from ``birth`` to ``on`` (ISO dates), or ``None`` if either is unusable."""
    b, d = parse_iso(birth), parse_iso(on)
    if b is None or d is None or d < b:
        return None
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))
