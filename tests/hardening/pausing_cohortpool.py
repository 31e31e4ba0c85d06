"""``cohortpool`` with a pause injected part-way through one step, so a test can SIGKILL the run there.

Fault injection belongs to the tests, never to the product: this launcher patches the composition
layer in its own process, then runs the real CLI. ``COHORTPOOL_TEST_PAUSE_AT`` names the step:

- ``deidentify``: once some but not all files are placed (the workers' staging folder on disk);
- ``validate``: once the batch's first table is in its staging folder;
- ``load``: inside the load's open transaction, after its checks, before COMMIT.

``COHORTPOOL_TEST_PAUSE_SECONDS`` (default 120) is how long it sleeps there. Worker processes the run
spawns (the hub's validation workers) import this file too and patch themselves the same way.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

STEP = os.environ["COHORTPOOL_TEST_PAUSE_AT"]
SECONDS = float(os.environ.get("COHORTPOOL_TEST_PAUSE_SECONDS", "120"))
Progress = Callable[[int, int], None] | None


def _pause() -> None:
    print(f"test pause at {STEP} for {SECONDS:.0f} s", file=sys.stderr, flush=True)
    time.sleep(SECONDS)


def _midway(progress: Progress) -> Callable[[int, int], None]:
    """A progress callback that pauses once, the first time some but not all of the work is done."""
    paused = False

    def report(done: int, total: int) -> None:
        nonlocal paused
        if progress is not None:
            progress(done, total)
        if not paused and 0 < done < total:
            paused = True
            _pause()

    return report


def _patch() -> None:
    if STEP == "deidentify":
        import cohortpool.pipeline.site as site

        deidentify_tree = site.deidentify_tree

        def paused_deid(*args: Any, progress: Progress = None, **kwargs: Any) -> Any:
            return deidentify_tree(*args, progress=_midway(progress), **kwargs)

        site.deidentify_tree = paused_deid  # type: ignore[assignment]
    elif STEP == "validate":
        import cohortpool.pipeline.hub as hub

        validate_submission = hub.validate_submission

        def paused_validation(*args: Any, progress: Progress = None, **kwargs: Any) -> Any:
            return validate_submission(*args, progress=_midway(progress), **kwargs)

        hub.validate_submission = paused_validation  # type: ignore[assignment]
    elif STEP == "load":
        import cohortpool.warehouse.load as load

        run_checks = load._run_checks

        def paused_checks(*args: Any, **kwargs: Any) -> Any:
            found = run_checks(*args, **kwargs)
            _pause()
            return found

        load._run_checks = paused_checks  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown pause step {STEP!r}")


if __name__ == "__mp_main__":
    # a worker process the run spawned (the hub validates in such workers): multiprocessing imports this
    # file in it under that name, so the pause reaches the step where it runs
    _patch()
elif __name__ == "__main__":
    _patch()
    from cohortpool.cli import main

    sys.argv[0] = "cohortpool"
    main()
