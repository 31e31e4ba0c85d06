"""The temporary Prefect API server of ``cohortpool run`` and ``cohortpool demo``, started by cohortpool.

Prefect starts one by itself when no ``PREFECT_API_URL`` is set (``SubprocessASGIServer``: uvicorn in a
child process that inherits the whole environment, stopped only by an ``atexit`` hook). A run killed
with ``kill -9`` then left it running, re-parented to PID 1, with ``COHORTPOOL_SECRET`` in its
environment. This module starts the same application itself instead, in a child process of its own
(:func:`serve`):

- the server dies with the run, ``kill -9`` included (:func:`cohortpool.contract.processes.die_with_parent`);
- its environment carries no ``COHORTPOOL_*`` variable (the key, the key file, the demo switch);
- it runs in a session of its own: a terminal's Ctrl-C reaches the run, which stops it;
- it binds a free port itself (port 0) and tells the run which, so two runs never race for a port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from cohortpool.contract.processes import die_with_parent

#: the same switches Prefect sets for its own temporary server: no UI, the ephemeral server's settings
SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
#: the server process's program (``-c``, not ``-m``: this module is already imported by the CLI package)
_CHILD = "import sys; from cohortpool.cli._prefect_server import serve; serve(int(sys.argv[1]))"
#: a fresh Prefect home builds the server's database (migrations) first: allow for a busy machine
STARTUP_SECONDS = 180


class ServerStartError(RuntimeError):
    """The temporary server did not answer; the message ends with the last lines of its log."""


def server_environment(environ: dict[str, str]) -> dict[str, str]:
    """The server's environment: the run's, without any ``COHORTPOOL_*`` variable (the server needs none,
    and the key must not sit in a process that does not use it)."""
    kept = {k: v for k, v in environ.items() if not k.startswith("COHORTPOOL_")}
    return {**kept, **SERVER_ENV}


class TemporaryServer:
    """One temporary Prefect API server, a child of this process; ``stop`` or this process's death ends it.

    Parameters
    ----------
    log
        Where the server's own output goes (Prefect logs errors only here).
    """

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: subprocess.Popen[str] | None = None
        self.api_url = ""

    def start(self, timeout: float = STARTUP_SECONDS) -> str:
        """Start the server and wait until it answers (its database migrated); its API URL."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  (this interpreter, a fixed program, our PID)
                [sys.executable, "-c", _CHILD, str(os.getpid())],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=server_environment(dict(os.environ)),
                text=True,
                start_new_session=True,
            )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().strip()
        self.process.stdout.close()
        if not port.isdigit():
            raise ServerStartError(f"the temporary Prefect server did not start{self._log_tail()}")
        self.api_url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + timeout
        # imported here, not with the module: every CLI verb imports this module (``run`` registers
        # with the app), and httpx costs about a quarter of a second that ``deid`` or ``validate`` never use
        import httpx

        with httpx.Client(timeout=5) as client:
            while True:
                if self.process.poll() is not None:
                    raise ServerStartError(
                        f"the temporary Prefect server exited with code {self.process.returncode}"
                        + self._log_tail()
                    )
                try:
                    if client.get(f"{self.api_url}/health").status_code == httpx.codes.OK:
                        return self.api_url
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"the temporary Prefect server did not answer within {timeout:.0f} s"
                        + self._log_tail()
                    )
                time.sleep(0.2)

    def stop(self) -> None:
        """Ask the server to stop, then make sure it has."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """End the server now (an interrupted run): nothing of the run is waiting for it any more."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {' | '.join(lines[-3:])}" if lines else ""


def serve(parent: int) -> None:
    """The child: die with ``parent``, bind a free port, tell it to the parent, serve Prefect's API."""
    die_with_parent(parent)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    sys.stdout.write(f"{listener.getsockname()[1]}\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the parent reads one line only: the rest to the log
    import uvicorn

    config = uvicorn.Config(
        "prefect.server.api.server:create_app", factory=True, log_level="error", lifespan="on"
    )
    uvicorn.Server(config).run(sockets=[listener])
