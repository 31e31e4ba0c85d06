"""What ``cohortpool run`` and ``cohortpool demo`` hold from their first moment to their last.

In this order, before Prefect is imported or any server starts:

1. Ctrl-C (SIGINT) and SIGTERM stop the run at once with one line and exit 130 (143 for SIGTERM). The
   steps are crash-safe (a ``kill -9`` anywhere is rerun to the same end state, ``tests/hardening``), so
   stopping at once loses only unfinished work, which the next run redoes; waiting for Prefect to wind
   down its task threads took minutes. The flow itself runs off the main thread
   (:func:`off_the_main_thread`), so Prefect's own SIGTERM handler never replaces these.
2. The output folder's lock (:meth:`cohortpool.pipeline.layout.RunLayout.exclusive`): a second run on the
   same folder says which PID holds it and waits, or with ``--no-wait`` stops with exit 2.
3. The temporary Prefect server, when no ``PREFECT_API_URL`` names one
   (:mod:`cohortpool.cli._prefect_server`). Its database lives in the run's Prefect home,
   ``OUT/.prefect`` unless the operator set ``PREFECT_HOME``: under the output folder's lock, so no two
   processes ever migrate it at once. A ``PREFECT_HOME`` outside the output folder is locked as well
   (runs on different folders sharing it then take turns).
"""

from __future__ import annotations

import contextvars
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import TypeVar

import typer

from cohortpool.cli._app import EXIT_FAILED, EXIT_USAGE, fail
from cohortpool.cli._prefect_server import ServerStartError, TemporaryServer
from cohortpool.pipeline.layout import FolderBusyError, RunLayout, hold

#: the signals that stop a run, with exit code 128 + the signal's number (130 for Ctrl-C)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: the lock of a Prefect home shared by runs on different output folders
HOME_LOCK = ".cohortpool-server.lock"
T = TypeVar("T")


def _say(message: str) -> None:
    typer.echo(message, err=True)


class RunControl:
    """The run's lock, signal handlers and temporary server (see the module's docstring)."""

    def __init__(self, layout: RunLayout, *, wait: bool) -> None:
        self.layout, self.wait = layout, wait
        self.server: TemporaryServer | None = None
        self._stack = ExitStack()

    def interrupted(self, signum: int, _frame: FrameType | None) -> None:
        """Stop now: one line, the server ended, exit 128 + signum (no unwinding through Prefect)."""
        for stop in STOP_SIGNALS:
            signal.signal(stop, signal.SIG_IGN)
        if self.server is not None:
            self.server.kill()
        tty = sys.stderr.isatty()
        sys.stdout.flush()
        # on a terminal the progress bar holds the line and has hidden the cursor
        sys.stderr.write(
            ("\n" if tty else "")
            + f"interrupted ({signal.Signals(signum).name}): the run stopped; finished steps are kept, "
            "run it again to finish the rest\n" + ("\x1b[?25h" if tty else "")
        )
        sys.stderr.flush()
        os._exit(128 + signum)

    def _lock(self, lock: AbstractContextManager[None]) -> None:
        try:
            self._stack.enter_context(lock)
        except FolderBusyError as exc:
            raise fail(f"{exc} (--no-wait)", EXIT_USAGE) from None

    def lock_output(self) -> None:
        """Hold the output folder (waiting for, or with ``--no-wait`` refusing, another run's)."""
        self._lock(self.layout.exclusive(on_wait=_say, wait=self.wait))

    def prefect_api(self) -> str | None:
        """Start the temporary Prefect server unless ``PREFECT_API_URL`` names one; its API URL.

        Call after :func:`cohortpool.cli.run.prepare_environment` (the server reads ``PREFECT_HOME``)
        and before Prefect is imported.
        """
        if os.environ.get("PREFECT_API_URL"):
            return None
        home = Path(os.environ.get("PREFECT_HOME", str(self.layout.prefect_home))).resolve()
        if not home.is_relative_to(self.layout.out.resolve()):
            home.mkdir(parents=True, exist_ok=True)
            busy = f"another run (pid {{pid}}) is using Prefect's home {home}"
            self._lock(hold(home / HOME_LOCK, busy, _say, wait=self.wait))
        self.server = TemporaryServer(self.layout.prefect_home / "server.log")
        try:
            url = self.server.start()
        except ServerStartError as exc:
            raise fail(str(exc), EXIT_FAILED) from None
        os.environ["PREFECT_API_URL"] = url
        return url

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            os.environ.pop("PREFECT_API_URL", None)  # this server's: gone with it
        self._stack.close()


@contextmanager
def controlled_run(layout: RunLayout, *, wait: bool) -> Iterator[RunControl]:
    """Signals handled and the output folder held for the block (see the module's docstring)."""
    control = RunControl(layout, wait=wait)
    # signal handlers can be set only in the main thread (a test's in-process runner may be elsewhere)
    handles = threading.current_thread() is threading.main_thread()
    previous = {stop: signal.signal(stop, control.interrupted) for stop in STOP_SIGNALS} if handles else {}
    try:
        control.lock_output()
        yield control
    finally:
        control.close()
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def off_the_main_thread(call: Callable[[], T]) -> T:
    """``call()`` in a thread of its own (with this context's variables), while the main thread waits.

    Prefect's flow engine, run in the main thread, replaces the SIGTERM handler with its own, which
    unwinds the flow through its task threads (minutes while a step works). Run elsewhere, it leaves
    both signals to :class:`RunControl`, and the main thread waits in a join that a signal interrupts.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the main thread, which raises it
            failure.append(exc)

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(target,), name="cohortpool-run", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]
