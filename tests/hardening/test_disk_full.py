"""A full disk while writing outputs (issue 8), stage by stage: the step fails with a clear message,
nothing half-written is taken for complete, and a rerun once there is space catches up exactly.

The fault is injected two ways. Everywhere: ``OSError(ENOSPC)`` (DuckDB: its I/O error) raised at a
stage's real write point after part of the file was written, through the stage's CLI in this process
(de-identification with one worker, so the worker runs here too). Where the machine lets a test mount
one (root, as in CI): a real size-limited tmpfs under the output, the CLI in a subprocess, then the
same tmpfs made larger for the rerun.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import Result
from support import SECRET, cli
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.synth import write_consortium
from cohortpool.warehouse import checksum
from config_support import write_config
from warehouse_batches import make_tables, warehouse_rows, write_batch

pytestmark = pytest.mark.xdist_group("hardening-disk-full")
RUNNER = CliRunner()
ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"
#: an empty file in the drop: the one file a run may rightly record as quarantined
BROKEN = "dicom/broken.dcm"
Fault = Callable[[pytest.MonkeyPatch], None]


def _full() -> OSError:
    return OSError(errno.ENOSPC, ENOSPC)


def _on_call(number: int, original: Callable[..., Any], partial: Callable[..., None]) -> Callable[..., Any]:
    """``original``, except that its ``number``-th call writes part of its output and raises ENOSPC."""
    calls = 0

    def write(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == number:
            partial(*args, **kwargs)
            raise _full()
        return original(*args, **kwargs)

    return write


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def _tmpfs(target: Path, size: str) -> Iterator[None]:
    """A real size-limited file system at ``target`` (skips the test where mounting is not allowed)."""
    target.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a size-limited tmpfs here (needs root)")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _resize(target: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(target)], check=True)


# --- de-identification (cohortpool deid) -------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """An uninterrupted run: exit code, the submission's and the vault's bytes."""

    code: int
    submission: Path
    vault: Path

    def matches(self, submission: Path, vault: Path) -> None:
        assert _snapshot(submission) == _snapshot(self.submission)
        assert _snapshot(vault) == _snapshot(self.vault)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    write_consortium(root, sites=1, max_patients=3)
    drop = next((root / "site01").iterdir())
    (drop / BROKEN).write_bytes(b"")
    return drop


@pytest.fixture
def drop(landing: Path, tmp_path: Path) -> Path:
    """A private copy of the drop (a test may re-deliver it changed)."""
    copy = tmp_path / "landing" / "site01" / landing.name
    shutil.copytree(landing, copy)
    return copy


def _deid_reference(drop: Path, root: Path) -> Reference:
    submission, vault = root / "submission", root / "vault"
    done = cli(
        *_deid_args(drop, submission, vault),
        env={"COHORTPOOL_CONFIG": str(write_config(root / "sites.yaml"))},
    )
    assert done.returncode == 1, done.stderr  # BROKEN is quarantined
    assert (submission / "submission.json").is_file()
    return Reference(done.returncode, submission, vault)


@pytest.fixture(scope="module")
def reference(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return _deid_reference(landing, tmp_path_factory.mktemp("reference"))


def _deid_args(drop: Path, submission: Path, vault: Path) -> tuple[str, ...]:
    return ("deid", str(drop), str(submission), "--site", "site01", "--vault", str(vault), "--workers", "1")


def _deid(drop: Path, submission: Path, vault: Path) -> Result:
    return RUNNER.invoke(app, list(_deid_args(drop, submission, vault)))


def _quarantined(vault: Path, night: str) -> set[str]:
    """Input files the vault records as quarantined (its ledger rows and its copies)."""
    found = set()
    ledger = vault / "ledger" / f"{night}.csv"
    if ledger.is_file():
        with ledger.open(encoding="utf-8", newline="") as handle:
            found |= {r["input_path"] for r in csv.DictReader(handle) if r["outcome"] == "quarantined"}
    copies = vault / "quarantine" / night
    return found | (set(_snapshot(copies)) if copies.is_dir() else set())


def _half(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[: len(text) // 2], encoding="utf-8")


def _dicom_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    from cohortpool.deid import worker

    def partial(staged: Path, head: bytes, *_: Any) -> None:
        Path(staged).write_bytes(head[: len(head) // 2])

    monkeypatch.setattr(worker, "_write", _on_call(10, worker._write, partial))


def _vault_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    from cohortpool.deid.ledger import Vault

    def partial(vault: Vault, night: str, source: Path, relative: str) -> None:
        _half(vault.root / "quarantine" / night / relative, "half a copy")

    monkeypatch.setattr(Vault, "quarantine", _on_call(1, Vault.quarantine, partial))


def _tables_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    from cohortpool.features import tables

    def partial(path: Path, columns: tuple[str, ...], rows: list[dict[str, object]]) -> None:
        _half(path, ",".join(columns) + "\n" + "".join(f"{r}\n" for r in rows))

    monkeypatch.setattr(tables, "write_csv", _on_call(1, tables.write_csv, partial))


def _manifest_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    from cohortpool.pipeline import site as package

    def partial(records: list[dict[str, Any]], path: Path, site_id: str) -> None:
        _half(path, "site_id,patient_id,accession_id,study_uid\n" * 4)

    monkeypatch.setattr(package, "write_manifest", _on_call(1, package.write_manifest, partial))


def _submission_json_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    from cohortpool.pipeline import site as package

    def partial(out_dir: Path, *_: Any, **__: Any) -> None:
        _half(out_dir / "submission.json", '{"counts": {}, "files": {}, "night": "x", "site_id": "site01"}')

    monkeypatch.setattr(package, "package_submission", _on_call(1, package.package_submission, partial))


#: the write points of a site's submission, in the order a run reaches them
DEID_FAULTS: dict[str, Fault] = {
    "dicom output": _dicom_fault,
    "vault quarantine copy": _vault_fault,
    "clinical.csv": _tables_fault,
    "imaging_manifest.csv": _manifest_fault,
    "submission.json": _submission_json_fault,
}


@pytest.mark.parametrize("point", list(DEID_FAULTS))
def test_deid_on_a_full_disk_fails_clearly_quarantines_nothing_and_a_rerun_catches_up(
    point: str, drop: Path, reference: Reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHORTPOOL_SECRET", SECRET)
    submission, vault = tmp_path / "submission", tmp_path / "vault"
    with monkeypatch.context() as patched:
        DEID_FAULTS[point](patched)
        failed = _deid(drop, submission, vault)

    assert failed.exit_code == 3 and not isinstance(failed.exception, OSError)  # one line, no traceback
    message = failed.output  # the nightly task's failure says the same (OutputWriteError)
    assert f"error: {ENOSPC}" in message and f"submission folder {submission}" in message
    assert str(vault) in message and "no submission.json was written" in message
    # nothing vouches for the folder, and the disk's fault is never blamed on a file
    assert not (submission / "submission.json").exists()
    assert not (submission / "release_blocked.json").exists()
    assert _quarantined(vault, drop.name) <= {BROKEN}

    again = _deid(drop, submission, vault)
    assert again.exit_code == reference.code, again.output
    reference.matches(submission, vault)


def test_with_several_workers_a_full_disk_stops_the_chunks_not_yet_started(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk is not a per-file problem: the workers must not go on through the whole night."""
    from cohortpool.deid import worker

    drop = tmp_path / "landing" / "site01" / landing.name
    one = next(p for p in sorted((landing / "dicom").rglob("*.dcm")) if p.stat().st_size > 0)
    for n in range(208):  # 13 chunks of 16 files for two workers
        copy = drop / "dicom" / f"{n:03d}.dcm"
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(one, copy)
    attempts = tmp_path / "attempts.log"

    def full_after_a_while(*_: Any) -> None:  # runs in the forked workers: counted in a file
        with attempts.open("a", encoding="utf-8") as log:
            log.write("write\n")
        time.sleep(0.2)
        raise _full()

    monkeypatch.setattr(worker, "_write", full_after_a_while)
    monkeypatch.setenv("COHORTPOOL_SECRET", SECRET)
    args = [*_deid_args(drop, tmp_path / "submission", tmp_path / "vault")[:-1], "2"]
    failed = RUNNER.invoke(app, args)
    assert failed.exit_code == 3 and f"error: {ENOSPC}" in failed.output
    # each chunk stops at its first write: without cancelling, all 13 would have run
    assert 1 <= len(attempts.read_text(encoding="utf-8").splitlines()) <= 7


def test_a_redelivered_night_that_meets_a_full_disk_leaves_no_submission_for_the_hub(
    drop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHORTPOOL_SECRET", SECRET)
    submission, vault = tmp_path / "submission", tmp_path / "vault"
    assert _deid(drop, submission, vault).exit_code == 1  # BROKEN quarantined
    assert (submission / "submission.json").is_file()
    # the site sends the night again with a corrected clinical table; this time the disk fills up
    clinical = drop / "clinical.csv"
    with clinical.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[0]["bmi"] = f"{float(rows[0]['bmi']) + 1:.2f}"
    with clinical.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    corrected = _deid_reference(drop, tmp_path / "reference")
    with monkeypatch.context() as patched:
        _tables_fault(patched)
        failed = _deid(drop, submission, vault)
    assert failed.exit_code == 3 and f"error: {ENOSPC}" in failed.output

    # the previous night's manifest no longer vouches for a folder holding half a clinical.csv
    assert not (submission / "submission.json").exists()
    refused = RUNNER.invoke(app, ["validate", str(submission), "--out", str(tmp_path / "validated")])
    assert refused.exit_code == 2 and "submission.json: missing" in refused.output
    assert not (tmp_path / "validated").exists()

    again = _deid(drop, submission, vault)
    assert again.exit_code == corrected.code, again.output
    assert _snapshot(submission) == _snapshot(corrected.submission)


def test_deid_onto_a_full_tmpfs_fails_clearly_and_a_rerun_with_space_catches_up(
    landing: Path, reference: Reference, tmp_path: Path
) -> None:
    small = tmp_path / "small"
    with _tmpfs(small, "300k"):  # the drop's DICOM is about 800 KiB
        submission, vault = small / "submission", tmp_path / "vault"
        env = {"COHORTPOOL_CONFIG": str(write_config(tmp_path / "sites.yaml"))}
        failed = cli(*_deid_args(landing, submission, vault), env=env)
        assert failed.returncode == 3
        assert ENOSPC in failed.stderr and f"submission folder {submission}" in failed.stderr, failed.stderr
        assert not (submission / "submission.json").exists()
        assert _quarantined(vault, landing.name) <= {BROKEN}

        _resize(small, "64m")
        again = cli(*_deid_args(landing, submission, vault), env=env)
        assert again.returncode == reference.code, again.stderr
        reference.matches(submission, vault)


# --- validation (cohortpool validate) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def validated(reference: Reference, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    """The reference submission validated without a fault: exit code and batch folder."""
    root = tmp_path_factory.mktemp("validated")
    done = cli(
        "validate",
        str(reference.submission),
        "--out",
        str(root / "batch"),
        env={"COHORTPOOL_CONFIG": str(write_config(root / "sites.yaml"))},
    )
    assert (root / "batch" / "summary.json").is_file(), done.stderr
    return done.returncode, root / "batch"


def _parquet_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    def partial(table: Any, where: Any, *_: Any, **__: Any) -> None:
        Path(where).write_bytes(b"PAR1 half a parquet file")

    monkeypatch.setattr(pq, "write_table", _on_call(2, pq.write_table, partial))


def _data_docs_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    from cohortpool.validate import staged

    def partial(folder: Path, *_: Any) -> None:
        _half(folder / "index.html", "<html><body>half a page</body></html>")

    # the last write before the batch is put in place: summary.json is already written beside it
    # (patched where the batch writer looks the function up)
    monkeypatch.setattr(staged, "write_data_docs", _on_call(1, staged.write_data_docs, partial))


VALIDATE_FAULTS: dict[str, Fault] = {"accepted parquet": _parquet_fault, "data docs": _data_docs_fault}


def _validate(submission: Path, out: Path) -> Result:
    return RUNNER.invoke(app, ["validate", str(submission), "--out", str(out)])


@pytest.mark.parametrize("point", list(VALIDATE_FAULTS))
def test_validate_on_a_full_disk_leaves_no_batch_and_a_rerun_catches_up(
    point: str,
    reference: Reference,
    validated: tuple[int, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "validated" / "site01"
    with monkeypatch.context() as patched:
        VALIDATE_FAULTS[point](patched)
        failed = _validate(reference.submission, out)
    assert failed.exit_code != 0
    assert failed.exit_code == 3 and f"error: {ENOSPC}" in failed.output and str(out) in failed.output
    assert not out.exists()  # no batch folder at all, so no summary.json a load could take

    again = _validate(reference.submission, out)
    code, batch = validated
    assert again.exit_code == code, again.output
    assert _snapshot(out) == _snapshot(batch)


def test_revalidating_on_a_full_disk_keeps_the_previous_batch_whole(
    reference: Reference, validated: tuple[int, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "validated" / "site01"
    shutil.copytree(validated[1], out)
    with monkeypatch.context() as patched:
        _parquet_fault(patched)
        failed = _validate(reference.submission, out)
    assert failed.exit_code == 3 and f"error: {ENOSPC}" in failed.output
    assert _snapshot(out) == _snapshot(validated[1])  # the batch a load may take is the complete one


@pytest.mark.slow  # two validations in fresh processes (Great Expectations' import)
def test_validate_onto_a_full_tmpfs_leaves_no_batch_and_a_rerun_with_space_catches_up(
    reference: Reference, validated: tuple[int, Path], tmp_path: Path
) -> None:
    small = tmp_path / "small"
    with _tmpfs(small, "12k"):  # less than the accepted tables (about 20 KiB)
        out = small / "site01"
        env = {"COHORTPOOL_CONFIG": str(write_config(tmp_path / "sites.yaml"))}
        failed = cli("validate", str(reference.submission), "--out", str(out), env=env)
        assert failed.returncode == 3 and ENOSPC in failed.stderr, failed.stderr
        assert not out.exists()

        _resize(small, "64m")
        again = cli("validate", str(reference.submission), "--out", str(out), env=env)
        assert again.returncode == validated[0], again.stderr
        assert _snapshot(out) == _snapshot(validated[1])


# --- warehouse load (cohortpool load) ----------------------------------------------------------------


@dataclass(frozen=True)
class Batches:
    """Two nights of one site, and the warehouse checksum after loading both without a fault."""

    night1: Path
    night2: Path
    checksum: str


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> Batches:
    from cohortpool.warehouse import load_batch

    root = tmp_path_factory.mktemp("batches")
    night1 = write_batch(root / "night1", "site01", "2026-11-01", make_tables("site01", 10, seed=1))
    night2 = write_batch(root / "night2", "site01", "2026-11-02", make_tables("site01", 300, seed=2))
    for batch in (night1, night2):
        load_batch(root / "reference.duckdb", batch)
    return Batches(night1, night2, checksum(root / "reference.duckdb"))


def _io_error(db: Path) -> duckdb.IOException:
    """What DuckDB raises when a statement cannot write its blocks (large inserts write early)."""
    return duckdb.IOException(f'IO Error: Could not write file "{db}": {ENOSPC}')


class _CommitFails:
    """A warehouse connection whose COMMIT meets a full disk, as DuckDB does when it cannot write the
    WAL: the transaction is aborted, and the error is a TransactionException "Failed to commit"."""

    def __init__(self, con: duckdb.DuckDBPyConnection, db: Path, when: Callable[[], bool]) -> None:
        self._con, self._db, self._when = con, db, when

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def commit(self) -> None:
        if not self._when():
            self._con.commit()
            return
        self._con.rollback()
        raise duckdb.TransactionException(
            f'TransactionContext Error: Failed to commit: Could not write file "{self._db}.wal": {ENOSPC}'
        )


def _commit_fault(batch_only: bool) -> Fault:
    """The first COMMIT of the load fails (the analysis views' refresh, before the batch), or the
    batch's own."""

    def install(monkeypatch: pytest.MonkeyPatch) -> None:
        from cohortpool.warehouse import load

        connect, load_rows = load.connect, load._load
        started: list[bool] = []

        def loading(*args: Any, **kwargs: Any) -> Any:
            started.append(True)
            return load_rows(*args, **kwargs)

        def when() -> bool:
            return bool(started) or not batch_only

        monkeypatch.setattr(load, "_load", loading)
        monkeypatch.setattr(load, "connect", lambda db, **kw: _CommitFails(connect(db, **kw), Path(db), when))

    return install


def _insert_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    from cohortpool.warehouse import load

    insert = load._insert_table

    def fails_on_reads(con: Any, batch: Any, table: str, params: dict[str, Any]) -> int:
        rows = insert(con, batch, table, params)  # clinical's rows are in the transaction by now
        if table == "reads":
            raise _io_error(Path(con.execute("PRAGMA database_list").fetchone()[2]))
        return rows

    monkeypatch.setattr(load, "_insert_table", fails_on_reads)


LOAD_FAULTS: dict[str, Fault] = {
    "views commit": _commit_fault(batch_only=False),
    "batch insert": _insert_fault,
    "batch commit": _commit_fault(batch_only=True),
}


def _load(batch: Path, db: Path) -> Result:
    return RUNNER.invoke(app, ["load", str(batch), "--db", str(db)])


@pytest.mark.parametrize("point", list(LOAD_FAULTS))
def test_load_on_a_full_disk_rolls_back_with_a_clear_error_and_a_rerun_catches_up(
    point: str, batches: Batches, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "warehouse.duckdb"
    assert _load(batches.night1, db).exit_code == 0
    before = warehouse_rows(db)
    with monkeypatch.context() as patched:
        LOAD_FAULTS[point](patched)
        failed = _load(batches.night2, db)

    assert failed.exit_code == 3
    assert isinstance(failed.exception, SystemExit), failed.exception  # an error line, not a traceback
    assert failed.output.startswith("error: ") and ENOSPC in failed.output
    assert str(batches.night2) in failed.output and f"the warehouse {db} " in failed.output
    assert "nothing was loaded" in failed.output
    assert warehouse_rows(db) == before  # not recorded as loaded, no row of it anywhere

    again = _load(batches.night2, db)
    assert again.exit_code == 0, again.output
    assert checksum(db) == batches.checksum


def test_load_onto_a_full_tmpfs_rolls_back_and_a_rerun_with_space_catches_up(
    batches: Batches, tmp_path: Path
) -> None:
    small = tmp_path / "small"
    with _tmpfs(small, "64m"):  # the warehouse, its published copy and the next copy
        db = small / "warehouse.duckdb"
        env = {"COHORTPOOL_CONFIG": str(write_config(tmp_path / "sites.yaml"))}
        assert cli("load", str(batches.night1), "--db", str(db), env=env).returncode == 0
        before = warehouse_rows(db)
        filler = small / "filler"  # the disk fills up with something else: 16 KiB are left
        filler.write_bytes(bytes(shutil.disk_usage(small).free - (16 << 10)))

        failed = cli("load", str(batches.night2), "--db", str(db), env=env)
        assert failed.returncode == 3, failed.stderr
        assert "Traceback" not in failed.stderr, failed.stderr
        assert ENOSPC in failed.stderr and "nothing was loaded" in failed.stderr
        filler.unlink()
        assert warehouse_rows(db) == before

        again = cli("load", str(batches.night2), "--db", str(db), env=env)
        assert again.returncode == 0, again.stderr
        assert checksum(db) == batches.checksum
