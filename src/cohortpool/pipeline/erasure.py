"""Withdrawn patients' values leave the hub's files too, not only its warehouse.

The load erases a withdrawn patient from the warehouse (:mod:`cohortpool.warehouse.withdrawals`); the hub
also keeps files that hold their values: the admitted submissions (``OUT/submissions/<site>/<night>/``:
table rows and the patient's de-identified DICOM under ``dicom/<patient_id>/``), the validated batches
(``OUT/validated/<site>/<night>/``: accepted rows, quarantine and warning lines, Data Docs pages naming
the pseudonym) and refused arrivals (``OUT/rejected/<site>/<night>/``). :func:`erase_withdrawn` takes
them out of every folder of the site, after every load of the site, not only the one that withdrew the
patient: withdrawal is final, and an older night arriving late, a re-delivery or a cumulative export may
carry the patient again (the warehouse erases those rows in the same load; this erases the files).

What stays is what the contract allows: pseudonyms (``withdrawn.csv``, the record), site, night, counts.
Each folder rewritten gets ``erasure.json`` (:mod:`cohortpool.contract.erasure`): which files were
rewritten or removed, their checksums before and after, how much was erased. Verification and the load
read a file that matches the record as the file that was checked and loaded, so an erased folder is
never refused or loaded again as new content.

Rows are taken out of a CSV file with the bytes of every other line kept as they were (the site's or the
validator's quoting, formula escapes, line ends), so the same folder and the same withdrawals give the
same bytes, and a re-run finds nothing left to erase and writes nothing. Files are rewritten through a
hidden temporary file renamed over the original after the record is written: a kill between leaves
either the original (the record's *after* does not match it, so it is checked as received) or the
erased file the record describes, and the next load finishes the work.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cohortpool.contract.erasure import ERASURE_FILE, ErasedFile, ErasureRecord, read_record, write_record
from cohortpool.contract.files import sha256_file
from cohortpool.validate.submission import MANIFEST, content_sha256, file_hashes

#: the hub's file stores under OUT, each ``<store>/<site>/<night>/``
STORES: tuple[str, ...] = ("submissions", "validated", "rejected")
#: files naming only the fact of withdrawal (pseudonym and site): kept as they are
KEPT = frozenset({"withdrawn.csv"})
#: what a page shows where it named a withdrawn patient
REDACTED = "[withdrawn patient]"
_HIDDEN_PREFIX = "."
#: a validated batch being written (``validate`` stages it beside its folder)
STAGING_SUFFIX = ".partial"
_TEMP_SUFFIX = ".erasing"


class ErasureError(RuntimeError):
    """A file holding a withdrawn patient's values could not be erased; the warehouse load stands."""


@dataclass(frozen=True)
class ErasureSummary:
    """What one erasure pass did across a site's folders (counts only)."""

    folders: int = 0
    files_rewritten: int = 0
    files_removed: int = 0
    #: rows (tables), lines (quarantine, warnings) and mentions (pages) erased
    erased: int = 0

    @property
    def files(self) -> int:
        return self.files_rewritten + self.files_removed

    def __add__(self, other: ErasureSummary) -> ErasureSummary:
        return ErasureSummary(
            self.folders + other.folders,
            self.files_rewritten + other.files_rewritten,
            self.files_removed + other.files_removed,
            self.erased + other.erased,
        )


def erase_withdrawn(out: Path, site_id: str, patients: Sequence[str]) -> ErasureSummary:
    """Erase the values of ``patients`` (pseudonyms of ``site_id``) from every folder of the site under
    ``out``'s stores; returns the counts (nothing when nothing was left to erase).

    Raises
    ------
    ErasureError
        A file could not be read or rewritten (a full disk, permissions); the files done so far stay
        erased, and the next load of the site erases the rest.
    """
    total = ErasureSummary()
    if not patients:
        return total
    needles = tuple(sorted(set(patients)))
    for store in STORES:
        root = out / store / site_id
        if root.is_symlink() or not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.name.startswith(_HIDDEN_PREFIX) or folder.is_symlink() or not folder.is_dir():
                continue
            if folder.name.endswith(STAGING_SUFFIX):
                continue  # a validation writing its batch (renamed into place when complete)
            try:
                total += erase_folder(folder, store, site_id, needles)
            except (OSError, UnicodeDecodeError) as exc:
                raise ErasureError(
                    f"{folder}: the values of {site_id}'s withdrawn patients could not be erased ({exc}); "
                    "the warehouse no longer holds them, and the next load of the site erases the files "
                    "again: fix the cause (free space, permissions) and run the load again"
                ) from exc
    return total


def _basis(folder: Path, store: str) -> tuple[str, str]:
    """The file naming the folder's version and its sha256 ("" when a refused arrival has none)."""
    names = ("summary.json",) if store == "validated" else ("submission.json", "reason.json")
    for name in names:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            return name, sha256_file(path)
    return names[0], ""


def _files(folder: Path) -> Iterator[str]:
    """Every regular file under ``folder`` (relative POSIX paths, sorted), links never followed; hidden
    top-level entries (temporary files) and the erasure record left out."""
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        here = Path(root).relative_to(folder)
        if here == Path():
            dirs[:] = [d for d in dirs if not d.startswith(_HIDDEN_PREFIX)]
            names = [n for n in names if not n.startswith(_HIDDEN_PREFIX) and n != ERASURE_FILE]
        for name in sorted(names):
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                yield (here / name).as_posix()


def _names_patient(relpath: str, needles: tuple[str, ...]) -> bool:
    """A file under a folder named for the patient (``dicom/<patient_id>/...``)."""
    return any(part in needles for part in relpath.split("/")[:-1])


def erase_csv_rows(data: bytes, needles: tuple[str, ...]) -> tuple[bytes, int]:
    """``data`` (a CSV file) without the records any cell of which holds one of ``needles``, every other
    line's bytes as they were; and how many records went. The header is kept."""
    text = data.decode("utf-8", "surrogateescape")
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            consumed.append(line)
            yield line

    kept: list[str] = []
    erased = 0
    try:
        for number, record in enumerate(csv.reader(lines())):
            chunk = "".join(consumed)
            consumed.clear()
            if number and any(n in cell for cell in record for n in needles):
                erased += 1
            else:
                kept.append(chunk)
        kept.append("".join(consumed))
    except csv.Error:
        # not a CSV the reader takes (a refused arrival, a cell past the reader's limit): by line
        kept, erased = [], 0
        for number, line in enumerate(io.StringIO(text, newline="")):
            if number and any(n in line for n in needles):
                erased += 1
            else:
                kept.append(line)
    return "".join(kept).encode("utf-8", "surrogateescape"), erased


def erase_parquet_rows(path: Path, needles: tuple[str, ...]) -> tuple[bytes, int] | None:
    """The Parquet file without the rows of ``needles`` (column ``patient_id``), and how many went;
    None when it has no such row (only that column is read to find out)."""
    if "patient_id" not in pq.read_schema(path).names:
        return None
    wanted = pa.array(needles, type=pa.string())
    ids = pq.read_table(path, columns=["patient_id"]).column("patient_id")
    hits = int(pc.sum(pc.is_in(ids, value_set=wanted)).as_py() or 0)
    if not hits:
        return None
    table = pq.read_table(path)
    keep = pc.invert(pc.fill_null(pc.is_in(table.column("patient_id"), value_set=wanted), False))
    sink = pa.BufferOutputStream()
    pq.write_table(table.filter(keep), sink)
    return sink.getvalue().to_pybytes(), hits


def _erase_text(data: bytes, needles: tuple[str, ...]) -> tuple[bytes, int]:
    """A page with each mention of ``needles`` replaced by :data:`REDACTED`, and how many there were."""
    text = data.decode("utf-8", "surrogateescape")
    mentions = 0
    for needle in needles:
        mentions += text.count(needle)
        text = text.replace(needle, REDACTED)
    return text.encode("utf-8", "surrogateescape"), mentions


def _erased_content(folder: Path, relpath: str, needles: tuple[str, ...]) -> tuple[bytes, int] | None:
    """The file's new bytes and what was erased from it; None when it holds nothing of the patients."""
    path = folder / relpath
    name = relpath.rsplit("/", 1)[-1]
    if relpath in KEPT:
        return None
    suffix = Path(name).suffix.lower()
    if suffix == ".parquet":
        return erase_parquet_rows(path, needles)
    if suffix not in (".csv", ".html", ".htm"):
        return None
    data = path.read_bytes()
    if not any(n.encode() in data for n in needles):
        return None
    new, erased = erase_csv_rows(data, needles) if suffix == ".csv" else _erase_text(data, needles)
    return (new, erased) if new != data else None


def erase_folder(folder: Path, store: str, site_id: str, needles: tuple[str, ...]) -> ErasureSummary:
    """Erase ``needles``' values from one folder of a store; its ``erasure.json`` records what changed."""
    for leftover in folder.rglob(f"{_HIDDEN_PREFIX}*{_TEMP_SUFFIX}"):
        leftover.unlink()  # a rewrite a killed pass staged and never renamed: the original is in place
    basis_file, basis_sha256 = _basis(folder, store)
    earlier = read_record(folder, basis_sha256)
    rewrites: dict[str, tuple[bytes, int]] = {}
    removals: list[str] = []
    for relpath in _files(folder):
        if _names_patient(relpath, needles):
            removals.append(relpath)
            continue
        content = _erased_content(folder, relpath, needles)
        if content is not None:
            rewrites[relpath] = content
    if not rewrites and not removals:
        return ErasureSummary()

    entries = dict(earlier.files) if earlier is not None else {}
    for relpath, (data, erased) in rewrites.items():
        entries[relpath] = _entry(folder, relpath, entries.get(relpath), len(data), erased, data)
    for relpath in removals:
        entries[relpath] = _entry(folder, relpath, entries.get(relpath), None, 0, None)
    night = folder.name
    # the site's withdrawn patients the folder was erased for (pseudonyms: what the contract keeps)
    patients = tuple(sorted(set(needles) | set(earlier.patients if earlier is not None else ())))
    record = ErasureRecord(basis_file, basis_sha256, site_id, night, patients, entries)

    # new contents first, under hidden names; then the record; then the renames and removals
    staged = {}
    for relpath, (data, _) in rewrites.items():
        target = folder / relpath
        temp = target.with_name(f"{_HIDDEN_PREFIX}{target.name}{_TEMP_SUFFIX}")
        temp.write_bytes(data)
        staged[temp] = target
    write_record(folder, record)
    for temp, target in staged.items():
        temp.replace(target)
    for relpath in removals:
        (folder / relpath).unlink()
        _prune(folder, (folder / relpath).parent)
    return ErasureSummary(1, len(rewrites), len(removals), sum(e for _, e in rewrites.values()))


def _entry(
    folder: Path, relpath: str, earlier: ErasedFile | None, size: int | None, erased: int, data: bytes | None
) -> ErasedFile:
    """The record's entry for a file rewritten (``data``) or removed (None). A file the hub had erased
    from before keeps the checksum it had before the first erasure: what submission.json or the load
    vouched for."""
    path = folder / relpath
    now = sha256_file(path), path.stat().st_size
    if earlier is not None and not earlier.removed and (earlier.sha256, earlier.size) == now:
        before, before_size, total = earlier.before_sha256, earlier.before_size, earlier.erased + erased
    else:
        before, before_size, total = now[0], now[1], erased
    if data is None:
        return ErasedFile(before, before_size, None, None, total)
    return ErasedFile(before, before_size, hashlib.sha256(data).hexdigest(), size, total)


def _prune(folder: Path, directory: Path) -> None:
    """Remove ``directory`` and its parents up to ``folder`` while they are empty."""
    while directory != folder and directory.is_relative_to(folder):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def content_as_received(submission_dir: Path) -> str | None:
    """The content sha256 validation gave the submission before the hub erased from it (the one its
    batch id and ``summary.json`` ``submission_sha256`` name); None when the hub never erased from this
    version of the folder.

    Every file is named by the checksum its ``erasure.json`` says it had, the files removed with a
    withdrawn patient count as there, and the record itself as not part of the submission.
    """
    manifest = submission_dir / MANIFEST
    if not manifest.is_file():
        return None
    record = read_record(submission_dir, sha256_file(manifest))
    if record is None:
        return None
    hashes = file_hashes(submission_dir)
    hashes.pop(ERASURE_FILE, None)
    for relpath, sha256 in hashes.items():
        hashes[relpath] = record.as_was(relpath, sha256, (submission_dir / relpath).stat().st_size)[0]
    for relpath, entry in record.files.items():
        if entry.removed and relpath not in hashes:
            hashes[relpath] = entry.before_sha256
    return content_sha256(submission_dir, hashes)
