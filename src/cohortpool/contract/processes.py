"""Processes started on a run's behalf die with it, ``kill -9`` of the run included.

A helper process that outlives its run keeps the consortium key in its memory (and, when inherited, its
environment) and may hold ports or files: the de-identification workers and the temporary Prefect
server both call :func:`die_with_parent` first thing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: prctl(2) option: the signal this process receives when the thread that created it exits
_PR_SET_PDEATHSIG = 1


def _pdeathsig(signum: int) -> bool:
    """Ask Linux to send ``signum`` when the parent exits; False where prctl(2) is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, every: float) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def die_with_parent(parent: int | None = None, every: float = 1.0) -> None:
    """End this process when its parent ends, however the parent ends.

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``: nothing in this
    process can delay it). Elsewhere, and also on Linux as a second line, a daemon thread polls the
    parent PID every ``every`` seconds and exits once the process has been re-parented. ``parent`` is the
    PID the caller expects as its parent: when it has already died (before this call), exit at once.
    Call it in the child itself, first thing (for a process that ``exec``s, before the exec: the setting
    survives ``exec`` of a non-setuid program).
    """
    expected = os.getppid() if parent is None else parent
    _pdeathsig(signal.SIGKILL)
    if os.getppid() != expected:  # the parent died before the kernel was asked to tell us
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(expected, every), daemon=True).start()


def exit_when_orphaned(parent: int, every: float = 1.0) -> None:
    """End this process within ``every`` seconds of being re-parented (its parent ``parent`` died), and
    quietly on Ctrl-C (a terminal sends SIGINT to the whole process group: what it means is for the
    parent to say, once, not for every worker to print a traceback).

    The thread-only half of :func:`die_with_parent`, for the workers of a process pool: the kernel's
    ``PR_SET_PDEATHSIG`` follows the *thread* that started the child, and a pool starts its workers
    from whichever thread submits work (a Prefect task's, which ends long before the worker should).
    Use it as the pool's ``initializer`` with the pool owner's PID.
    """
    if os.getppid() != parent:
        os._exit(1)
    signal.signal(signal.SIGINT, _exit_quietly)
    threading.Thread(target=_watch_parent, args=(parent, every), daemon=True).start()


def _exit_quietly(signum: int, frame: object) -> None:
    os._exit(128 + signum)
