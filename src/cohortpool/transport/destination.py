"""Where ``push`` writes: a local or mounted folder, or an SFTP server (:mod:`cohortpool.transport.sftp`).

Both offer the same few operations on POSIX paths relative to the destination root, so the push logic
(:mod:`cohortpool.transport.push`) is written once. Every upload hashes the site's bytes while it sends
them (:func:`checked_blocks`): a file whose bytes no longer match ``submission.json`` is never renamed
into place.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from cohortpool.transport.errors import DestinationError, SubmissionDamagedError, TransientError
from cohortpool.transport.manifest import ListedFile

#: read size from the site's disk
READ_BLOCK = 1 << 20


class Destination(Protocol):
    """A place submissions are pushed to. Paths are relative POSIX paths under its root."""

    #: how messages name it (never a secret: no password ever appears in a destination)
    description: str

    def read_bytes(self, path: str) -> bytes | None:
        """The file's bytes, or None when there is no such file."""

    def files_under(self, path: str) -> dict[str, int] | None:
        """Every file under the folder ``path`` (relative path -> size), or None when it is missing."""

    def makedirs(self, path: str) -> None:
        """Create the folder and its parents (existing ones are fine)."""

    def mkdir(self, path: str) -> None:
        """Create one folder whose parent exists (an existing one is fine)."""

    def upload(self, source: Path, path: str, listed: ListedFile, on_bytes: Callable[[int], None]) -> None:
        """Write ``source`` to ``path`` (a temporary name), checking it against ``listed`` as it is read."""

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a small file (a temporary name: the caller renames it into place)."""

    def replace(self, source: str, target: str) -> None:
        """Rename a file over ``target`` (atomic on the destination's file system)."""

    def rename_dir(self, source: str, target: str) -> None:
        """Rename a folder to ``target``, which must not exist; FileNotFoundError if ``source`` is gone."""

    def exists(self, path: str) -> bool:
        """Whether anything is at ``path``."""

    def remove_tree(self, path: str) -> None:
        """Remove a file or a folder and all it holds (a missing one is fine)."""

    def close(self) -> None:
        """Release the connection."""


def checked_blocks(source: Path, listed: ListedFile, block: int = READ_BLOCK) -> Iterator[bytes]:
    """The bytes of ``source`` in blocks; after the last, raise :class:`SubmissionDamagedError` unless they
    have the size and sha256 ``submission.json`` lists (one read of the site's file does both)."""
    digest = hashlib.sha256()
    size = 0
    try:
        handle = source.open("rb")
    except OSError as exc:
        raise SubmissionDamagedError(f"{listed.path}: cannot be read at the site ({exc.strerror})") from exc
    with handle:
        while data := handle.read(block):
            digest.update(data)
            size += len(data)
            yield data
    if listed.size is not None and size != listed.size:
        raise SubmissionDamagedError(
            f"{listed.path}: {size} bytes at the site, submission.json lists {listed.size}"
        )
    if digest.hexdigest() != listed.sha256:
        raise SubmissionDamagedError(f"{listed.path}: its sha256 at the site differs from submission.json's")


class LocalDestination:
    """A folder on this machine or a mounted share. Writes are fsynced before they are renamed."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise DestinationError(f"{root}: no such folder; create it (or mount the share) and push again")
        self.root = root
        self.description = str(root)

    def _path(self, path: str) -> Path:
        return self.root / path

    def read_bytes(self, path: str) -> bytes | None:
        with _errors(self, path):
            try:
                return self._path(path).read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                return None

    def files_under(self, path: str) -> dict[str, int] | None:
        top = self._path(path)
        if not top.is_dir():
            return None
        found: dict[str, int] = {}
        with _errors(self, path):
            for root, _dirs, names in os.walk(top):
                prefix = os.path.relpath(root, top)
                prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
                for name in names:
                    found[prefix + name] = os.lstat(f"{root}/{name}").st_size
        return found

    def makedirs(self, path: str) -> None:
        with _errors(self, path):
            self._path(path).mkdir(parents=True, exist_ok=True)

    def mkdir(self, path: str) -> None:
        with _errors(self, path):
            self._path(path).mkdir(exist_ok=True)

    def upload(self, source: Path, path: str, listed: ListedFile, on_bytes: Callable[[int], None]) -> None:
        with _errors(self, path), self._path(path).open("wb") as out:
            for data in checked_blocks(source, listed):
                out.write(data)
                on_bytes(len(data))
            out.flush()
            os.fsync(out.fileno())

    def write_bytes(self, path: str, data: bytes) -> None:
        with _errors(self, path), self._path(path).open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())

    def replace(self, source: str, target: str) -> None:
        with _errors(self, target):
            try:
                self._path(source).replace(self._path(target))
            except FileNotFoundError as exc:
                raise TransientError(
                    f"{self.description}/{source} vanished (is another push running?)"
                ) from exc

    def rename_dir(self, source: str, target: str) -> None:
        with _errors(self, target):
            if self._path(target).exists():
                raise FileExistsError(errno.EEXIST, "exists", target)
            self._path(source).rename(self._path(target))
            _fsync_dir(self._path(target).parent)

    def exists(self, path: str) -> bool:
        return os.path.lexists(self._path(path))

    def remove_tree(self, path: str) -> None:
        target = self._path(path)
        with _errors(self, path):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to release."""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _errors(destination: LocalDestination, path: str) -> Iterator[None]:
    """Permission problems are the destination's configuration (exit 2); a full, failing or stale
    share may recover, so those are retried."""
    try:
        yield
    except (FileNotFoundError, FileExistsError, SubmissionDamagedError):
        raise
    except PermissionError as exc:
        raise DestinationError(
            f"{destination.description}/{path}: permission denied; give this user write access"
        ) from exc
    except OSError as exc:
        raise TransientError(f"{destination.description}/{path}: {exc.strerror or exc}") from exc
