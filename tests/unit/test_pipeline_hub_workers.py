"""The hub's parallel half: validation in worker processes, loads in order, the published copy.

Real worker processes (``spawn``), real validations and a real warehouse; the one stand-in is the target
of the crash test, a module-level function that ends its worker process the way an out-of-memory kill
would, for one marked submission only.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from validate_support import copy_clean, set_cell

from cohortpool.pipeline import hub
from cohortpool.pipeline.records import ValidationSummary
from cohortpool.warehouse import checksum, load_batch, published_path
from warehouse_batches import make_tables, write_batch

pytestmark = pytest.mark.slow

#: a file whose presence in a submission makes :func:`crash_on_marker` kill its worker process
CRASH_MARKER = "crash-this-worker"


def crash_on_marker(submission_dir: Path, validated_dir: Path) -> ValidationSummary:
    """:func:`hub.validate_into_batch`, except that a marked submission ends the process at once."""
    if (submission_dir / CRASH_MARKER).exists():
        os._exit(70)
    return hub.validate_into_batch(submission_dir, validated_dir)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def submissions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three different submissions: clean, with a bad value, with another table's defect."""
    root = tmp_path_factory.mktemp("submissions")
    clean = copy_clean(root / "clean")
    sex = copy_clean(root / "sex")
    set_cell(sex, "clinical", 2, "sex", "male")
    level = copy_clean(root / "level")
    set_cell(level, "reads", 5, "level", "L7")
    return {"clean": clean, "sex": sex, "level": level}


@pytest.fixture(scope="module")
def reference(submissions: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each submission validated in this process, one after the other."""
    root = tmp_path_factory.mktemp("reference")
    for name, submission in submissions.items():
        hub.validate_into_batch(submission, root / name)
    return {name: root / name for name in submissions}


def test_workers_write_the_bytes_of_an_in_process_validation_in_any_order(
    submissions: dict[str, Path], reference: dict[str, Path], tmp_path: Path
) -> None:
    names = sorted(submissions)
    with hub.validation_workers(2) as workers, ThreadPoolExecutor(len(names)) as threads:
        assert workers is not None and workers.owner == os.getpid()
        # submitted from threads in two opposite orders: the workers finish in whatever order they do
        for order in (names, names[::-1]):
            futures = {
                n: threads.submit(hub.validate_in_worker, submissions[n], tmp_path / "-".join(order) / n)
                for n in order
            }
            for name, future in futures.items():
                summary = future.result()
                assert summary.path == tmp_path / "-".join(order) / name
                assert _files(summary.path) == _files(reference[name]), name
        # the validations ran in the worker processes, not in this one's threads
        assert len(workers._pool._processes) == 2
    assert hub._ACTIVE == []


def test_without_workers_a_validation_runs_in_this_process(
    submissions: dict[str, Path], reference: dict[str, Path], tmp_path: Path
) -> None:
    with hub.validation_workers(0) as workers:
        assert workers is None
        summary = hub.validate_in_worker(submissions["clean"], tmp_path / "clean")
    assert _files(summary.path) == _files(reference["clean"])


def test_a_worker_that_dies_fails_its_own_site_night_and_no_other(
    submissions: dict[str, Path], reference: dict[str, Path], tmp_path: Path
) -> None:
    doomed = copy_clean(tmp_path / "doomed")
    (doomed / CRASH_MARKER).write_text("end the worker that validates this\n", encoding="utf-8")
    jobs = {"doomed": doomed, **submissions}
    workers = hub.ValidationWorkers(2, target=crash_on_marker)
    try:
        with ThreadPoolExecutor(len(jobs)) as threads:
            futures = {n: threads.submit(workers.validate, s, tmp_path / "out" / n) for n, s in jobs.items()}
            with pytest.raises(hub.ValidationWorkerDied, match="doomed"):
                futures["doomed"].result()
            for name in submissions:
                assert _files(futures[name].result().path) == _files(reference[name]), name
        # the pool was replaced: later site-nights still validate
        again = workers.validate(submissions["clean"], tmp_path / "after")
        assert _files(again.path) == _files(reference["clean"])
    finally:
        workers.close()
    assert not (tmp_path / "out" / "doomed").exists()


def _night(root: Path, site: str, seed: int) -> Path:
    return write_batch(root / site, site, "2026-11-01", make_tables(site, 4, seed=seed))


def test_publish_after_loads_copies_once_and_again_only_after_a_new_load(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    load_batch(db, _night(tmp_path, "site01", 1))
    published = hub.publish_warehouse(db)
    assert published == published_path(db) and checksum(published) == checksum(db)
    first = published.stat()

    # nothing new loaded: the copy is left as it is (a reader's file is not replaced for nothing)
    assert hub.publish_warehouse(db) == published
    assert (published.stat().st_ino, published.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)

    # a load the copy does not hold yet, e.g. a run stopped between its load and its publish
    load_batch(db, _night(tmp_path, "site02", 2))
    assert checksum(published) != checksum(db)
    hub.publish_warehouse(db)
    assert published.stat().st_ino != first.st_ino
    assert checksum(published) == checksum(db)
