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
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: notes the night's summary may carry besides the retention list's (what, attribute, VR)
UNKNOWN_CHARACTER_SET = "unknown character set"
UNDECODABLE_TEXT = "text not in its character set"
_SPECIFIC_CHARACTER_SET = 0x00080005
#: the start of a pydicom message -> the note it gives (pydicom 3 charset.py)
_NOTES = (
    ("Unknown encoding", UNKNOWN_CHARACTER_SET),
    ("Failed to decode byte string", UNDECODABLE_TEXT),
)


#: the state quiet sections share: logger and warning settings are process-wide, and de-identification
#: runs files in threads (two sites of a nightly run at once), so the first section to start saves them,
#: the last to end gives them back, and each thread's warnings go to its own list
_LOCK = threading.Lock()
_SECTIONS = 0
_SAVED: tuple[bool, list[Any], Any] | None = None
_LOCAL = threading.local()


def _show(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    caught = getattr(_LOCAL, "caught", None)
    if caught is not None:
        caught.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
    elif _SAVED is not None:  # a thread outside any quiet section: shown as it would have been
        _SAVED[2](message, category, filename, lineno, file, line)


@contextmanager
def pydicom_quiet() -> Iterator[list[warnings.WarningMessage]]:
    """Capture every warning this thread raises inside (the list is yielded) and silence pydicom's
    logger; safe with other threads doing the same (module state above)."""
    global _SECTIONS, _SAVED
    logger = logging.getLogger("pydicom")
    with _LOCK:
        if _SECTIONS == 0:
            _SAVED = (logger.disabled, list(warnings.filters), warnings.showwarning)
            logger.disabled = True
            warnings.simplefilter("always")
            warnings.showwarning = _show
        _SECTIONS += 1
    caught: list[warnings.WarningMessage] = []
    outer = getattr(_LOCAL, "caught", None)
    _LOCAL.caught = caught
    try:
        yield caught
    finally:
        _LOCAL.caught = outer
        with _LOCK:
            _SECTIONS -= 1
            if _SECTIONS == 0 and _SAVED is not None:
                logger.disabled, filters, warnings.showwarning = _SAVED
                # what warnings.catch_warnings does on leaving: the list back, the filter cache reset
                setattr(warnings, "filters", filters)  # noqa: B010
                warnings._filters_mutated()  # type: ignore[attr-defined]
                _SAVED = None


def warning_notes(caught: list[warnings.WarningMessage]) -> dict[tuple[str, int, str], int]:
    """(note, tag, VR) -> 1 for each kind of captured warning worth saying (values never kept)."""
    found: dict[tuple[str, int, str], int] = {}
    for warning in caught:
        text = str(warning.message)
        for start, note in _NOTES:
            if text.startswith(start):
                found[(note, _SPECIFIC_CHARACTER_SET, "CS")] = 1
    return found
