"""One Validator per process validates many submissions: fixed costs once, same bytes however it runs.

The hub will validate site-nights in parallel processes; the nightly flow already validates sites in
threads. Whatever the arrangement (one Validator reused, threads sharing it, a process pool calling
``validate_submission``), every batch must be byte-identical to the one a lone call writes.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from validate_support import copy_clean, set_cell

from cohortpool.contract import resources
from cohortpool.validate import Validator, validate_submission
from cohortpool.validate.batch import process_validator
from cohortpool.validate.suites import TableSuite

pytestmark = pytest.mark.slow


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def submissions(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three submissions of site02: clean, a bad level and sex, a warning-only read."""
    root = tmp_path_factory.mktemp("submissions")
    clean = copy_clean(root / "clean")
    bad = copy_clean(root / "bad")
    set_cell(bad, "reads", 5, "level", "L7")
    set_cell(bad, "clinical", 2, "sex", "male")
    warned = copy_clean(root / "warned")
    set_cell(warned, "reads", 1, "marrow_oedema", "yes")
    return [clean, bad, warned]


@pytest.fixture(scope="module")
def reference(submissions: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, bytes]]:
    """Each submission validated by a fresh Validator of its own."""
    root = tmp_path_factory.mktemp("reference")
    out = []
    for n, submission in enumerate(submissions):
        Validator().validate_submission(submission, root / str(n))
        out.append(_files(root / str(n)))
    assert len({files["summary.json"] for files in out}) == 3  # three different batches
    return out


def test_one_validator_builds_its_suites_once_for_many_submissions(
    submissions: list[Path],
    reference: list[dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[str] = []
    original = TableSuite.gx_suite

    def counting(self: TableSuite, applies_to: str, positions: list[int] | None = None) -> object:
        built.append(f"{self.table}.{applies_to}")
        return original(self, applies_to, positions)

    monkeypatch.setattr(TableSuite, "gx_suite", counting)
    validator = Validator()
    for n, submission in enumerate(submissions):
        validator.validate_submission(submission, tmp_path / str(n))
        assert _files(tmp_path / str(n)) == reference[n]
        if n == 0:
            assert sorted(built) == sorted(f"{t}.{h}" for t in validator.suites for h in ("text", "typed"))
    assert len(built) == 6  # the later submissions built nothing


def test_the_process_validator_is_built_once_per_process_and_suite_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = process_validator()
    assert process_validator() is first
    elsewhere = tmp_path / "expectations"
    elsewhere.mkdir()
    for suite in first.suites.values():
        (elsewhere / suite.path.name).write_bytes(suite.path.read_bytes())
    monkeypatch.setattr(resources, "suites_dir", lambda: elsewhere)
    other = process_validator()
    assert other is not first and {s.path.parent for s in other.suites.values()} == {elsewhere}


def test_threads_sharing_one_validator_write_the_same_bytes(
    submissions: list[Path], reference: list[dict[str, bytes]], tmp_path: Path
) -> None:
    validator = Validator()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            validator.validate_submission(submissions[n], tmp_path / str(n))
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(submissions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [_files(tmp_path / str(n)) for n in range(len(submissions))] == reference


@pytest.mark.parametrize(
    "start",
    # a spawned worker imports GX anew (about a minute on the shared machine without compiled bytecode)
    ["fork", pytest.param("spawn", marks=pytest.mark.integration)],
)
def test_parallel_processes_write_the_same_bytes_as_one_process(
    start: str, submissions: list[Path], reference: list[dict[str, bytes]], tmp_path: Path
) -> None:
    """How the hub validates site-nights in parallel: a process pool calling ``validate_submission``.

    With ``fork`` the children inherit this process's (used) Validator and must build their own.
    """
    process_validator().validate_submission(submissions[0], tmp_path / "warm")  # the parent has one in use
    outs = [tmp_path / str(n) for n in range(len(submissions))]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(start)) as pool:
        outcomes = list(pool.map(validate_submission, submissions, outs))
    assert [o.exit_code for o in outcomes] == [0, 1, 0]
    assert [_files(out) for out in outs] == reference
    summary = json.loads((outs[1] / "summary.json").read_text())
    assert summary["tables"]["reads"]["quarantined"] == 1
