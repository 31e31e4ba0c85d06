"""ISO date helpers for the tables (the DICOM side has its own DA/DT forms in the deid stage)."""

from __future__ import annotations

import datetime as dt


def parse_iso(text: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` date, or ``None``."""
    try:
        return dt.date.fromisoformat(text.strip()) if len(text.strip()) == 10 else None
    except ValueError:
        return None


def shift_iso(text: str, days: int) -> str | None:
    """Shift an ISO date by whole days; ``None`` when it does not parse (never pass it through)."""
    date = parse_iso(text)
    return None if date is None else (date + dt.timedelta(days=days)).isoformat()


def age_years(birth: str, on: str) -> int | None:
    """Completed years from ``birth`` to ``on`` (ISO dates), or ``None`` if either is unusable."""
    b, d = parse_iso(birth), parse_iso(on)
    if b is None or d is None or d < b:
        return None
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))
