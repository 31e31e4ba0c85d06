"""The site-private vault: ledger, crosswalk and quarantined originals (never leaves the site).

Layout of ``VAULT_DIR`` (owner-only, 0700 folders and 0600 files)::

    crosswalk.csv                 kind, local_id, pseudonym, date_shift_days (merged across nights)
    ledger/<night>.csv            one row per input file: input_path, size, sha256, outcome,
                                  output_path, reason
    quarantine/<night>/<input>    the quarantined originals, at their input-relative paths

Everything is rewritten deterministically (sorted rows, no timestamps), so a second run of the same
night leaves the vault byte-identical.
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

LEDGER_COLUMNS = ("input_path", "size", "sha256", "outcome", "output_path", "reason")
CROSSWALK_COLUMNS = ("kind", "local_id", "pseudonym", "date_shift_days")
DEIDENTIFIED, QUARANTINED, DUPLICATE = "deidentified", "quarantined", "duplicate"


class VaultError(ValueError):
    """The vault location is unsafe (inside the output) or unusable."""


@dataclass(frozen=True)
class LedgerRow:
    """What happened to one input file."""

    input_path: str
    size: int
    sha256: str
    outcome: str
    output_path: str = ""
    reason: str = ""


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
            writer.writerow([formula_safe(getattr(row, c)) for c in LEDGER_COLUMNS])
        path = self.root / "ledger" / f"{night}.csv"
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
