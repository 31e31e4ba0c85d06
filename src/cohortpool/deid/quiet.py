"""Keep pydicom quiet while a file is read, cleaned and encoded.

pydicom reports odd values as it converts them, through ``warnings`` and its ``pydicom`` logger, and
its messages repeat the value ("Invalid value for VR UI: '...'", "Unknown encoding '...'") with the
path of its source: on a terminal or in a log (the nightly flow's, a site's own logging) that is PHI
leaving the worker. :func:`pydicom_quiet` captures both for the duration of one file;
:func:`warning_notes` keeps what is worth saying, without the value, as counts for the night's
summary (``ledger/<night>.summary.csv``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: notes the night's summary may carry besides the retention list's (what, attribute, VR)
UNKNOWN_CHARACTER_SET = "unknown character set"
UNDECODABLE_TEXT = "text not in its character set"
_SPECIFIC_CHARACTER_SET = 0x00080005
#: the start of a pydicom message -> the note it gives (pydicom 3 charset.py)
_NOTES = (
    ("Unknown encoding", UNKNOWN_CHARACTER_SET),
    ("Failed to decode byte string", UNDECODABLE_TEXT),
)


@contextmanager
def pydicom_quiet() -> Iterator[list[warnings.WarningMessage]]:
    """Capture every warning raised inside (the list is yielded) and silence pydicom's logger."""
    logger = logging.getLogger("pydicom")
    disabled = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        logger.disabled = disabled


def warning_notes(caught: list[warnings.WarningMessage]) -> dict[tuple[str, int, str], int]:
    """(note, tag, VR) -> 1 for each kind of captured warning worth saying (values never kept)."""
    found: dict[tuple[str, int, str], int] = {}
    for warning in caught:
        text = str(warning.message)
        for start, note in _NOTES:
            if text.startswith(start):
                found[(note, _SPECIFIC_CHARACTER_SET, "CS")] = 1
    return found
