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
import io
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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
    needles = Needles(patients)
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


#: up to this many pseudonyms, each is searched for on its own (a substring search is several times
#: faster than the pattern scan, which wins from a few dozen on)
_FEW = 8


class Needles:
    """The pseudonyms to erase, found in text without testing each of them against each cell.

    A hub erases every withdrawn patient of a site from every night's files, and a site may have
    withdrawn many: testing each pseudonym against each cell of a 10^6-row file would cost rows x cells x
    patients. Pseudonyms have one form (``P`` and 16 upper-case hex digits, validated before a withdrawal
    is recorded), so the text is scanned once for that form and each match looked up in a set; a ``P``
    never occurs inside the 16 digits, so no occurrence hides inside another match. Anything else given
    (never from the warehouse) is searched for as it is.
    """

    _FORM = re.compile(r"P[0-9A-F]{16}")
    _FORM_BYTES = re.compile(rb"P[0-9A-F]{16}")

    def __init__(self, patients: Sequence[str]) -> None:
        self.sorted = tuple(sorted(set(patients)))
        self._set = frozenset(self.sorted)
        self._bytes = frozenset(p.encode("utf-8", "surrogateescape") for p in self.sorted)
        self._other = tuple(p for p in self.sorted if not self._FORM.fullmatch(p))

    def __bool__(self) -> bool:
        return bool(self.sorted)

    def in_text(self, text: str) -> bool:
        if len(self.sorted) <= _FEW:
            return any(p in text for p in self.sorted)
        if any(m.group() in self._set for m in self._FORM.finditer(text)):
            return True
        return any(p in text for p in self._other)

    def in_bytes(self, data: bytes) -> bool:
        if len(self.sorted) <= _FEW:
            return any(p in data for p in self._bytes)
        if any(m.group() in self._bytes for m in self._FORM_BYTES.finditer(data)):
            return True
        return any(p.encode("utf-8", "surrogateescape") in data for p in self._other)

    def redact(self, text: str) -> tuple[str, int]:
        """``text`` with each mention replaced by :data:`REDACTED`, and how many there were."""
        count = 0

        def swap(match: re.Match[str]) -> str:
            nonlocal count
            if match.group() in self._set:
                count += 1
                return REDACTED
            return match.group()

        text = self._FORM.sub(swap, text)
        for other in self._other:
            count += text.count(other)
            text = text.replace(other, REDACTED)
        return text, count


#: how much of a file is read at a time when it is searched or rewritten
_CHUNK = 1 << 20


def file_holds(path: Path, needles: Needles) -> bool:
    """Whether ``path`` holds a mention of ``needles``, read a chunk at a time (the chunks overlap by
    a needle's length, so none is cut in two)."""
    overlap = max((len(p.encode("utf-8", "surrogateescape")) for p in needles.sorted), default=1) - 1
    tail = b""
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            if needles.in_bytes(tail + chunk):
                return True
            tail = chunk[-overlap:] if overlap else b""
    return False


def copy_csv_without(source: BinaryIO, sink: BinaryIO, needles: Needles) -> int:
    """Copy the CSV ``source`` to ``sink`` without the records any cell of which holds one of
    ``needles``, every other line's bytes as they were and the header kept; how many records went.

    Streams record by record (memory bounded by the longest record), so a 10^7-row table costs no more
    memory than a small one. Both streams must be seekable: a file the CSV reader refuses (a refused
    arrival, a cell past the reader's limit) is copied again from the start, line by line.
    """
    start_in, start_out = source.tell(), sink.tell()
    text = io.TextIOWrapper(source, encoding="utf-8", errors="surrogateescape", newline="")
    out = io.TextIOWrapper(sink, encoding="utf-8", errors="surrogateescape", newline="")
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in text:
            consumed.append(line)
            yield line

    erased = 0
    try:
        try:
            for number, record in enumerate(csv.reader(lines())):
                chunk = "".join(consumed)
                consumed.clear()
                if number and needles.in_text(chunk) and any(needles.in_text(cell) for cell in record):
                    erased += 1
                else:
                    out.write(chunk)
            out.write("".join(consumed))
        except csv.Error:
            out.flush()
            text.seek(start_in)  # a byte offset at a line start: a valid cookie for utf-8
            sink.seek(start_out)
            sink.truncate()
            erased = 0
            for number, line in enumerate(text):
                if number and needles.in_text(line):
                    erased += 1
                else:
                    out.write(line)
        out.flush()
    finally:
        # the caller owns the streams: leave them open
        text.detach()
        out.detach()
    return erased


#: rows of a Parquet file read and written at a time when the patient's rows are taken out
_PARQUET_BATCH = 65_536


def copy_parquet_without(path: Path, target: Path, needles: Needles) -> int | None:
    """Write ``path`` without the rows of ``needles`` (column ``patient_id``) to ``target``, batch by
    batch with the same schema; how many rows went, or None (nothing written) when it has none of
    them (only that column is read to find out)."""
    source = pq.ParquetFile(path)
    if "patient_id" not in source.schema_arrow.names:
        return None
    wanted = pa.array(needles.sorted, type=pa.string())
    ids = pq.read_table(path, columns=["patient_id"]).column("patient_id")
    hits = int(pc.sum(pc.is_in(ids, value_set=wanted)).as_py() or 0)
    del ids
    if not hits:
        return None
    with pq.ParquetWriter(target, source.schema_arrow) as writer:
        for batch in source.iter_batches(batch_size=_PARQUET_BATCH):
            gone = pc.fill_null(pc.is_in(batch.column("patient_id"), value_set=wanted), False)
            writer.write_batch(batch.filter(pc.invert(gone)))
    return hits


def _stage(folder: Path, relpath: str, needles: Needles) -> tuple[Path, int] | None:
    """The file's erased content, written to a hidden file beside it, and what was erased from it;
    None (nothing written) when it holds nothing of the patients."""
    path = folder / relpath
    if relpath in KEPT:
        return None
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ".html", ".htm"):
        return None
    temp = path.with_name(f"{_HIDDEN_PREFIX}{path.name}{_TEMP_SUFFIX}")
    try:
        if suffix == ".parquet":
            erased = copy_parquet_without(path, temp, needles)
            return None if erased is None else (temp, erased)
        if not file_holds(path, needles):
            return None
        if suffix == ".csv":
            with path.open("rb") as source, temp.open("wb") as sink:
                erased = copy_csv_without(source, sink, needles)
        else:  # a page: small (counts and samples), rewritten whole
            text, erased = needles.redact(path.read_bytes().decode("utf-8", "surrogateescape"))
            temp.write_bytes(text.encode("utf-8", "surrogateescape"))
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if erased == 0:  # mentioned, but in no record it can take out (the header): left as it is
        temp.unlink()
        return None
    return temp, erased


def erase_folder(folder: Path, store: str, site_id: str, needles: Needles) -> ErasureSummary:
    """Erase ``needles``' values from one folder of a store; its ``erasure.json`` records what changed."""
    for leftover in folder.rglob(f"{_HIDDEN_PREFIX}*{_TEMP_SUFFIX}"):
        leftover.unlink()  # a rewrite a killed pass staged and never renamed: the original is in place
    basis_file, basis_sha256 = _basis(folder, store)
    earlier = read_record(folder, basis_sha256)
    staged: dict[str, tuple[Path, int]] = {}
    removals: list[str] = []
    try:
        for relpath in _files(folder):
            if _names_patient(relpath, needles.sorted):
                removals.append(relpath)
                continue
            content = _stage(folder, relpath, needles)
            if content is not None:
                staged[relpath] = content
        if not staged and not removals:
            return ErasureSummary()

        entries = dict(earlier.files) if earlier is not None else {}
        for relpath, (temp, erased) in staged.items():
            entries[relpath] = _entry(folder, relpath, entries.get(relpath), erased, temp)
        for relpath in removals:
            entries[relpath] = _entry(folder, relpath, entries.get(relpath), 0, None)
        night = folder.name
        # the site's withdrawn patients the folder was erased for (pseudonyms: what the contract keeps)
        patients = tuple(sorted(set(needles.sorted) | set(earlier.patients if earlier is not None else ())))
        record = ErasureRecord(basis_file, basis_sha256, site_id, night, patients, entries)
        # new contents are staged under hidden names; then the record; then the renames and removals
        write_record(folder, record)
    except BaseException:
        for temp, _ in staged.values():
            temp.unlink(missing_ok=True)
        raise
    for relpath, (temp, _) in staged.items():
        temp.replace(folder / relpath)
    for relpath in removals:
        (folder / relpath).unlink()
        _prune(folder, (folder / relpath).parent)
    return ErasureSummary(1, len(staged), len(removals), sum(e for _, e in staged.values()))


def _entry(
    folder: Path, relpath: str, earlier: ErasedFile | None, erased: int, staged: Path | None
) -> ErasedFile:
    """The record's entry for a file rewritten (its new content staged at ``staged``) or removed (None).
    A file the hub had erased from before keeps the checksum it had before the first erasure: what
    submission.json or the load vouched for."""
    path = folder / relpath
    now = sha256_file(path), path.stat().st_size
    if earlier is not None and not earlier.removed and (earlier.sha256, earlier.size) == now:
        before, before_size, total = earlier.before_sha256, earlier.before_size, earlier.erased + erased
    else:
        before, before_size, total = now[0], now[1], erased
    if staged is None:
        return ErasedFile(before, before_size, None, None, total)
    return ErasedFile(before, before_size, sha256_file(staged), staged.stat().st_size, total)


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
