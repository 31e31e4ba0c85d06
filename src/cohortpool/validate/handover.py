"""A staged batch handed to a fresh process for its Data Docs, so that GX never sits beside the tables.

Why: GX is imported only to render its pages, and its import costs about 140 MB (its own modules, scipy,
altair, sqlalchemy). A process that has just checked 10^6 rows keeps about 200 MB after giving back what
it can (DuckDB's and Arrow's libraries resident, the C library's arenas, Python's), so rendering the pages
there peaked about 340 MB, while checking the rows peaks under 300 MB and a fresh process renders the
pages in about 270 MB (issue 16 item 2). ``cohortpool validate`` therefore replaces its own process
(``exec``, same process id, same terminal, same environment) with ``cohortpool _finish-validate`` once
the batch is staged: the peak of a validation is then the larger of the two steps, not their sum.

What crosses is the :class:`~cohortpool.validate.staged.StagedBatch` (the summary, the outcome, the
suites and each table's results: what the pages are made from, not the rows' findings), pickled into an
unnamed file in the staging folder whose descriptor the new program inherits: nothing is named on disk
or on the command line, and the file disappears with the descriptor. Pickle, not JSON: the results may
hold GX's own objects, and both ends are this package at the same version, within one ``exec``.

Only where the command owns its process (the console script, ``python -m cohortpool``): a program that
calls the CLI in-process (a test runner, a notebook) must not be replaced, and finishes in-process, as
it also does where ``exec`` is not available or fails before the new program starts.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
from collections.abc import Mapping

from cohortpool.validate.staged import StagedBatch


def hand_over(staged: StagedBatch, program: list[str], env: Mapping[str, str] | None = None) -> None:
    """Replace this process with ``program`` (the descriptor to :func:`take_over` appended to its
    arguments; ``env``: its environment, this one's by default); returns only when that cannot be done
    (no ``exec`` here, the batch cannot be pickled, ``exec`` failed): the caller then finishes
    in-process."""
    if os.name != "posix":
        return
    try:
        with tempfile.TemporaryFile(dir=staged.staging) as handle:
            pickle.dump(staged, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            handle.seek(0)
            os.set_inheritable(handle.fileno(), True)
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            # no shell: the program and its arguments as given (this package's own command)
            os.execve(program[0], [*program, str(handle.fileno())], dict(env or os.environ))  # noqa: S606
    except (pickle.PicklingError, TypeError, AttributeError, OSError):
        return


def take_over(descriptor: int) -> StagedBatch:
    """The batch a :func:`hand_over` passed through ``descriptor`` (read, then closed)."""
    with os.fdopen(descriptor, "rb") as handle:
        # written a moment ago by this package's own process, which this one replaced (exec)
        staged = pickle.load(handle)  # noqa: S301
    if not isinstance(staged, StagedBatch):
        raise TypeError(f"descriptor {descriptor} does not hold a staged batch")
    return staged
