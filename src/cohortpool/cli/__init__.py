"""`cohortpool <verb>`: the command-line interface.

Each verb lives in its own module and attaches itself to the root app; importing the module registers
it. Heavy libraries (Prefect, Great Expectations) are imported inside the command bodies, not at module
level, so ``cohortpool --help`` answers quickly.
"""

from __future__ import annotations

from cohortpool.cli import _app
from cohortpool.cli import deid as _deid  # noqa: F401  (registers deid)
from cohortpool.cli import deploy as _deploy  # noqa: F401  (registers deploy)
from cohortpool.cli import info as _info  # noqa: F401  (registers version, config, keygen)
from cohortpool.cli import listen as _listen  # noqa: F401  (registers listen, fetch)
from cohortpool.cli import load as _load  # noqa: F401  (registers load, db, export)
from cohortpool.cli import push as _push  # noqa: F401  (registers push)
from cohortpool.cli import receive as _receive  # noqa: F401  (registers receive)
from cohortpool.cli import report as _report  # noqa: F401  (registers report)
from cohortpool.cli import run as _run  # noqa: F401  (registers run, demo, serve)
from cohortpool.cli import stats as _stats  # noqa: F401  (registers stats compare)
from cohortpool.cli import status as _status  # noqa: F401  (registers status)
from cohortpool.cli import synth as _synth  # noqa: F401  (registers synth)
from cohortpool.cli import validate as _validate  # noqa: F401  (registers validate)
from cohortpool.cli._app import app


def main() -> None:
    """Console-script entry point: the command owns this process (:func:`_app.owns_process`)."""
    _app._OWNS_PROCESS = True
    app()


__all__ = ["app", "main"]
