"""The site-private vault: ledger, crosswalk and quarantined originals (never leaves the site).

Layout of ``VAULT_DIR`` (owner-only, 0700 folders and 0600 files)::

    key_fingerprint               the fingerprint of the consortium key the vault was made with
                                  (:func:`cohortpool.contract.keys.key_fingerprint`), written on first use
    crosswalk.csv                 kind, local_id, pseudonym, date_shift_days (merged across nights)
    ledger/<night>.csv            one row per input file: input_path, size, sha256, outcome,
                                  output_path, reason
    ledger/<night>.summary.csv    what the night removed or emptied, attribute by attribute, the
                                  instances pseudonymised without a Patient ID and the text segments
                                  blanked in compressed pixel data (counts, no values)
    quarantine/<night>/<input>    the quarantined originals, at their input-relative paths

Everything is rewritten deterministically (sorted rows, no timestamps), so a second run of the same
night leaves the vault byte-identical.

A vault belongs to one key: its crosswalk maps MRNs to pseudonyms under that key, and a run with
another secret would add a second, unlinkable pseudonym for every patient. The first run records the
key's fingerprint; a later run with a different secret is refused (:class:`KeyMismatchError`) before
anything is written.

File names come from the site and need not be UTF-8: the ledger writes every name and reason in a
readable form (:func:`readable`), undecodable bytes as ``\\xNN`` escapes.
"""

from __future__ import annotations

import csv
import filecmp
import io
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cohortpool.contract.csvio import formula_safe
from cohortpool.contract.keys import key_fingerprint

LEDGER_COLUMNS = ("input_path", "size", "sha256", "outcome", "output_path", "reason")
CROSSWALK_COLUMNS = ("kind", "local_id", "pseudonym", "date_shift_days")
SUMMARY_COLUMNS = ("what", "keyword", "tag", "vr", "count")
DEIDENTIFIED, QUARANTINED, DUPLICATE = "deidentified", "quarantined", "duplicate"
FINGERPRINT_FILE = "key_fingerprint"


class VaultError(ValueError):
    """The vault location is unsafe (inside the output) or unusable."""


class KeyMismatchError(VaultError):
    """The vault was made with another consortium key than the one this run holds."""


def readable(text: str) -> str:
    """``text`` as valid UTF-8 for the ledger: a name's undecodable bytes (held by Python as surrogate
    escapes, PEP 383) become ``\\xNN``; a valid name is unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def check_vault_key(vault: Path, secret: bytes) -> None:
    """Refuse ``secret`` when the vault at ``vault`` records another key's fingerprint (reads only).

    Raises
    ------
    KeyMismatchError
        Naming both fingerprints and what to do.
    """
    path = vault / FINGERPRINT_FILE
    try:
        recorded = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise VaultError(f"cannot read the vault's key fingerprint {path}: {exc}") from None
    given = key_fingerprint(secret)
    if recorded != given:
        raise KeyMismatchError(
            f"the vault {vault} belongs to the key with fingerprint {recorded}, but this secret's "
            f"fingerprint is {given}: run with the consortium secret the vault was made with (its "
            "crosswalk would otherwise get a second pseudonym for every patient), or use another vault"
        )


@dataclass(frozen=True)
class LedgerRow:
    """What happened to one input file."""

    input_path: str
    size: int
    sha256: str
    outcome: str
    output_path: str = ""
    reason: str = ""


def _cell(value: object) -> object:
    return readable(value) if isinstance(value, str) else value


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def check_vault(vault: Path, out_dir: Path, in_dir: Path) -> None:
    """Refuse a vault inside the submission (it would leave the site) or inside the input drop."""
    if _inside(vault, out_dir):
        raise VaultError(f"the vault {vault} is inside the output folder {out_dir}; put it elsewhere")
    if _inside(out_dir, vault):
        raise VaultError(f"the output folder {out_dir} is inside the vault {vault}; put it elsewhere")
    if _inside(vault, in_dir):
        raise VaultError(f"the vault {vault} is inside the input folder {in_dir}; put it elsewhere")


class Vault:
    """The site-private store of one site."""

    def __init__(self, root: Path) -> None:
        self.root = _private_dir(root)

    def _write(self, path: Path, text: str) -> None:
        _private_dir(path.parent)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return  # unchanged: leave the file (and its mtime) alone
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        tmp.replace(path)

    def record_key(self, secret: bytes) -> None:
        """Record the key's fingerprint on first use (:func:`check_vault_key` refuses another key)."""
        check_vault_key(self.root, secret)
        self._write(self.root / FINGERPRINT_FILE, key_fingerprint(secret) + "\n")

    def quarantine(self, night: str, source: Path, relative: str) -> Path:
        """Copy a quarantined original into the vault (input folders are never modified)."""
        target = self.root / "quarantine" / night / relative
        for parent in reversed(target.relative_to(self.root).parents):
            _private_dir(self.root / parent)
        if target.exists() and filecmp.cmp(source, target, shallow=False):
            return target  # a second run of the same night changes nothing
        shutil.copyfile(source, target)
        target.chmod(0o600)
        return target

    def write_ledger(self, night: str, rows: Iterable[LedgerRow]) -> Path:
        """Write the night's ledger, sorted by input path."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(LEDGER_COLUMNS)
        for row in sorted(rows, key=lambda r: r.input_path):
            writer.writerow([formula_safe(_cell(getattr(row, c))) for c in LEDGER_COLUMNS])
        path = self.root / "ledger" / f"{night}.csv"
        self._write(path, buffer.getvalue())
        return path

    def write_summary(self, night: str, rows: Iterable[tuple[str, str, str, str, int]]) -> Path:
        """Write the night's de-identification summary: (what, keyword, tag, VR, count) rows, sorted.

        ``what`` is ``removed`` (an attribute neither Table E.1-1 nor the retention list names),
        ``emptied`` (the same, kept empty because an IOD requires it), ``unlinked`` (instances
        without a Patient ID, pseudonymised from their study) or ``blanked <segment>`` (text segments
        of compressed frames' codestream headers, :mod:`cohortpool.deid.pixel_text`). Counts only: no
        value is written.
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(SUMMARY_COLUMNS)
        writer.writerows(sorted(rows))
        path = self.root / "ledger" / f"{night}.summary.csv"
        self._write(path, buffer.getvalue())
        return path

    def read_ledger(self, night: str) -> list[LedgerRow]:
        """The ledger of a night (for tests and audits)."""
        path = self.root / "ledger" / f"{night}.csv"
        with path.open(encoding="utf-8", newline="") as handle:
            return [
                LedgerRow(**{**r, "size": int(r["size"])})  # type: ignore[arg-type]
                for r in csv.DictReader(handle)
            ]

    def merge_crosswalk(self, entries: Iterable[tuple[str, str, str, str]]) -> Path:
        """Add (kind, local_id, pseudonym, date_shift_days) entries to the crosswalk, keeping old ones."""
        path = self.root / "crosswalk.csv"
        known: set[tuple[str, str, str, str]] = set()
        if path.exists():
            with path.open(encoding="utf-8", newline="") as handle:
                known = {tuple(r[c] for c in CROSSWALK_COLUMNS) for r in csv.DictReader(handle)}  # type: ignore[misc]
        known.update(tuple(formula_safe(v) for v in e) for e in entries)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CROSSWALK_COLUMNS)
        writer.writerows(sorted(known))
        self._write(path, buffer.getvalue())
        return path
