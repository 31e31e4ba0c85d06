"""De-identify a site drop's DICOM tree with a pool of worker processes.

Files are sorted by input-relative path and sent to the workers in chunks (one task per chunk keeps
scheduling overhead out of the per-file cost). Workers write to a staging folder; the parent, taking
the chunks in input order as they finish, moves each output into place, so the first copy of a SOP
instance wins and later copies are recorded as duplicates, whatever order the workers finished in.
An output that already holds the same bytes is left alone, so a second run over the same night
changes nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.datadict import keyword_for_tag

from cohortpool.config import DeidConfig
from cohortpool.contract.tables import DROP_TABLE_FILES
from cohortpool.deid.decide import EMPTIED, REMOVED, REPLACED
from cohortpool.deid.ledger import (
    DEIDENTIFIED,
    DUPLICATE,
    QUARANTINED,
    LedgerRow,
    Vault,
    check_vault,
    check_vault_key,
)
from cohortpool.deid.profile import EDITION, load_profile
from cohortpool.deid.worker import Job, Outcome, RecordHook, Worker, init_worker, run_chunk

STAGING = ".cohortpool-staging"
#: the notes of what the retention list took away (others in ``unlisted`` say what a file taught)
_RETENTION_NOTES = frozenset({REMOVED, EMPTIED, REPLACED})


@dataclass
class DeidResult:
    """The outcome of one run: counts, ledger rows, manifest records and profile facts."""

    site_id: str
    night: str
    edition: str
    options: tuple[str, ...]
    allow_burned_in: bool
    rows: list[LedgerRow] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    #: output path -> sha256 of its bytes (computed by the workers, for submission.json)
    hashes: dict[str, str] = field(default_factory=dict)
    #: files de-identified (or found duplicate) by the raw-bytes fast path, not pydicom's
    fast_path: int = 0
    #: (note, tag, VR) -> occurrences, in the de-identified outputs, of attributes neither Table E.1-1
    #: nor the retention list keeps (note: removed, emptied, replaced), and of what pydicom's warnings
    #: taught about a file, without the value (:mod:`cohortpool.contract.quiet`); the vault's night summary
    unlisted: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    #: de-identified instances without a Patient ID (pseudonymised from their study, unlinked)
    unlinked: int = 0
    #: segment kind -> text segments of codestream headers blanked in the outputs (no values)
    blanked: Counter[str] = field(default_factory=Counter)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "input_files": len(self.rows),
            DEIDENTIFIED: self.count(DEIDENTIFIED),
            QUARANTINED: self.count(QUARANTINED),
            DUPLICATE: self.count(DUPLICATE),
        }

    @property
    def removed(self) -> dict[str, int]:
        """Occurrences of attributes the retention list took away, by keyword (or tag when unnamed)."""
        by: Counter[str] = Counter()
        for (note, tag, _), n in self.unlisted.items():
            if note not in _RETENTION_NOTES:
                continue  # a note on the file (e.g. an unknown character set), not a removal
            by[keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"] += n
        return dict(sorted(by.items()))

    def summary_rows(self) -> list[tuple[str, str, str, str, int]]:
        """Rows of the vault's night summary (:meth:`cohortpool.deid.ledger.Vault.write_summary`)."""
        rows = [
            (note, keyword_for_tag(tag), f"({tag >> 16:04X},{tag & 0xFFFF:04X})", vr, n)
            for (note, tag, vr), n in self.unlisted.items()
        ]
        if self.unlinked:
            rows.append(("unlinked", "PatientID", "(0010,0020)", "LO", self.unlinked))
        for kind, n in self.blanked.items():
            rows.append((f"blanked {kind}", "PixelData", "(7FE0,0010)", "OB", n))
        return rows

    @property
    def reasons(self) -> dict[str, int]:
        """Quarantine reasons by kind (the text before the first colon: no identifiers)."""
        kinds: dict[str, int] = {}
        for row in self.rows:
            if row.outcome == QUARANTINED:
                kind = row.reason.split(":", 1)[0]
                kinds[kind] = kinds.get(kind, 0) + 1
        return dict(sorted(kinds.items()))


def list_inputs(in_dir: Path) -> list[str]:
    """Every file under ``in_dir`` except the top-level tables, as sorted relative POSIX paths.

    Names starting with ``.`` are skipped: the ingest stage writes files under a hidden temporary
    name and renames them when complete, so a hidden file is one still in transfer.
    """
    found = []

    def unlistable(error: OSError) -> None:  # recorded (the worker quarantines it), never skipped
        found.append(Path(str(error.filename)).relative_to(in_dir).as_posix())

    for root, dirs, files in os.walk(in_dir, onerror=unlistable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        # a symlinked folder is not walked (it may lead out of the drop): listed, so it is accounted for
        files = [*files, *(d for d in dirs if (Path(root) / d).is_symlink())]
        for name in files:
            if name.startswith("."):
                continue
            relative = (Path(root) / name).relative_to(in_dir).as_posix()
            if relative not in DROP_TABLE_FILES:
                found.append(relative)
    return sorted(found)


def _chunks(items: list[str], workers: int) -> Iterator[list[str]]:
    # small enough that the workers finish together (the last chunk is the idle tail of the others)
    size = max(1, min(16, len(items) // (workers * 4) or 1))
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            block_a, block_b = fa.read(1 << 20), fb.read(1 << 20)
            if block_a != block_b:
                return False
            if not block_a:
                return True


class _Placer:
    """Moves staged outputs into place in input order (the first copy of a SOP instance wins).

    Chunks are contiguous slices of the sorted inputs and are placed in submission order, so
    placing each chunk as soon as it is done keeps the input order while the workers go on.
    """

    def __init__(self, out_dir: Path, result: DeidResult) -> None:
        self.out_dir = out_dir
        self.result = result
        self.seen: dict[str, str] = {}
        self.crosswalk: list[tuple[str, str, str, str]] = []
        #: output folders already made this run (one mkdir per series, not one per file)
        self.made: set[Path] = set()

    def place(self, outcomes: list[Outcome]) -> None:
        _place(outcomes, self.out_dir, self.result, self.seen, self.crosswalk, self.made)


def _place(
    outcomes: list[Outcome],
    out_dir: Path,
    result: DeidResult,
    seen: dict[str, str],
    crosswalk: list[tuple[str, str, str, str]],
    made: set[Path],
) -> None:
    for o in sorted(outcomes, key=lambda o: o.input_path):
        if o.outcome == QUARANTINED:
            result.rows.append(LedgerRow(o.input_path, o.size, o.sha256, QUARANTINED, reason=o.reason))
            continue
        staged = Path(o.staged)
        result.fast_path += o.fast
        if o.sop_uid in seen:
            staged.unlink()
            reason = f"duplicate: same SOP Instance UID as {seen[o.sop_uid]}"
            result.rows.append(LedgerRow(o.input_path, o.size, o.sha256, DUPLICATE, o.output_path, reason))
            continue
        seen[o.sop_uid] = o.input_path
        result.unlisted.update(o.unlisted)
        result.unlinked += o.unlinked
        result.blanked.update(o.blanked)
        target = out_dir / o.output_path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        if target.exists() and _same_bytes(target, staged):
            staged.unlink()
        else:
            staged.replace(target)
        result.rows.append(LedgerRow(o.input_path, o.size, o.sha256, DEIDENTIFIED, o.output_path))
        result.outputs.append(o.output_path)
        result.hashes[o.output_path] = o.output_sha256
        crosswalk.extend(o.crosswalk)
        if o.record is not None:
            result.records.append(o.record)


def _remove_stale(out_dir: Path, keep: set[str]) -> None:
    """Drop DICOM outputs a previous run of this night left that this run did not produce."""
    dicom = out_dir / "dicom"
    if not dicom.is_dir():
        return
    for path in sorted(dicom.rglob("*.dcm")):
        if path.relative_to(out_dir).as_posix() not in keep:
            path.unlink()
    for folder in sorted((p for p in dicom.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def deidentify_tree(
    in_dir: Path,
    out_dir: Path,
    vault: Path,
    site_id: str,
    secret: bytes,
    night: str,
    options: DeidConfig | None = None,
    workers: int = 1,
    record_hook: RecordHook | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DeidResult:
    """De-identify every file under ``in_dir`` into ``out_dir``; ledger and quarantine into ``vault``.

    Parameters
    ----------
    in_dir
        The drop's DICOM folder (or any folder of files); never modified.
    out_dir
        The submission folder; outputs go to ``out_dir/dicom/<patient>/<study>/<series>/<sop>.dcm``.
    vault
        The site-private vault (must not be inside ``out_dir``).
    site_id, secret, night
        Who, with which key, for which night (the ledger and quarantine are per night).
    options
        Profile options, burned-in policy and maximum date shift (``Settings.deid``).
    workers
        Worker processes; 1 runs in this process.
    record_hook
        Called in the worker with each original header and the output identifiers before cleaning;
        its dicts (the imaging manifest's instance rows) come back in ``DeidResult.records``.
    progress
        Called with ``(files finished, input files)``: once before the first file, then after each chunk.

    Raises
    ------
    VaultError
        The vault sits inside the output or input, or (:class:`KeyMismatchError`) it was made with
        another key; raised before anything is written.
    """
    config = options or DeidConfig()
    profile = load_profile(tuple(config.options))
    vault_store = _open_vault(vault, out_dir, in_dir, secret)
    rerun = (out_dir / "dicom").is_dir()  # outputs of an earlier run of this night may need removing
    staging = _fresh_staging(out_dir)
    job = Job(
        secret=secret,
        site_id=site_id,
        options=profile.options,
        allow_burned_in=config.allow_burned_in,
        max_shift_days=config.max_date_shift_days,
        in_dir=in_dir,
        staging=staging,
        vault=vault,
        night=night,
        hook=record_hook,
    )
    inputs = list_inputs(in_dir)
    result = DeidResult(site_id, night, EDITION, profile.options, config.allow_burned_in)
    placer = _Placer(out_dir, result)
    try:
        _process(job, inputs, placer, workers, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if rerun:
        _remove_stale(out_dir, set(result.outputs))
    vault_store.write_ledger(night, result.rows)
    vault_store.write_summary(night, result.summary_rows())
    vault_store.merge_crosswalk(placer.crosswalk)
    return result


def _open_vault(vault: Path, out_dir: Path, in_dir: Path, secret: bytes) -> Vault:
    """The site's vault, checked before anything is written: not inside the output or the input, and
    made with this key (recorded on first use)."""
    check_vault(vault, out_dir, in_dir)
    check_vault_key(vault, secret)
    store = Vault(vault)
    store.record_key(secret)
    return store


def _fresh_staging(out_dir: Path) -> Path:
    """An empty staging folder inside ``out_dir`` (same file system: outputs are renamed into place)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def _process(
    job: Job,
    inputs: list[str],
    placer: _Placer,
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Run every input through a worker and place the outcomes, in input order."""
    finished = 0
    if progress:
        progress(0, len(inputs))
    if workers <= 1 or len(inputs) < 2:
        worker = Worker(job)
        for relative in inputs:
            placer.place([worker.run(relative)])
            finished += 1
            if progress:
                progress(finished, len(inputs))
        return
    # fork shares the imported modules with the workers (no re-import per process); the executor
    # starts all workers at the first submit, before any progress thread exists
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker, initargs=(job,)) as pool:
        futures = [pool.submit(run_chunk, chunk) for chunk in _chunks(inputs, workers)]
        try:
            for future in futures:  # in submission order, which is input order
                done = future.result()
                placer.place(done)
                finished += len(done)
                if progress:
                    progress(finished, len(inputs))
        except BaseException:  # a full disk, an interrupt: the chunks not yet started never run
            pool.shutdown(wait=True, cancel_futures=True)
            raise
