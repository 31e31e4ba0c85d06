"""Test-only launcher: ``cohortpool load`` that pauses inside its open transaction, just before COMMIT.

    python tests/integration/pausing_load.py SECONDS [cohortpool load arguments...]

Fault injection stays out of the product: this script replaces the warehouse's last in-transaction step
(the ``sql/checks`` run) with one that runs the real checks, prints :data:`MARKER` on stderr and sleeps,
then hands over to the real CLI. A test kills the process during the sleep (everything written, nothing
committed), or lets it go on to commit while it checks what other writers and readers see.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from cohortpool.cli import app
from cohortpool.warehouse import load as load_module

MARKER = "test launcher: paused inside the load transaction"


def main(argv: list[str]) -> None:
    seconds = float(argv[0])
    run_checks = load_module._run_checks

    def checks_then_pause(con: Any, values: dict[str, Any]) -> dict[str, int]:
        found = run_checks(con, values)
        print(MARKER, file=sys.stderr, flush=True)
        time.sleep(seconds)
        return found

    load_module._run_checks = checks_then_pause  # this process only: it exits when the CLI does
    app(["load", *argv[1:]], prog_name="cohortpool")


if __name__ == "__main__":
    main(sys.argv[1:])
