"""Helpers for the validation tests: copy the clean fixture submission and plant defects in it."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd

CLEAN = Path(__file__).resolve().parents[1] / "data" / "validate" / "clean"
TABLE_FILES = ("clinical.csv", "reads.csv", "imaging_manifest.csv")


def copy_clean(dest: Path) -> Path:
    """A writable copy of the clean submission (site02, 4 patients)."""
    shutil.copytree(CLEAN, dest)
    return dest


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_rows(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def set_cell(submission: Path, table: str, source_row: int, column: str, value: str) -> None:
    """Change one cell of ``<table>.csv`` (the row whose source_row is given)."""
    path = submission / f"{table}.csv"
    header, rows = read_rows(path)
    hits = [r for r in rows if r["source_row"] == str(source_row)]
    assert len(hits) == 1, f"no single row {source_row} in {path}"
    hits[0][column] = value
    write_rows(path, header, rows)


def lines(out: Path, name: str) -> pd.DataFrame:
    """``quarantine.csv`` or ``warnings.csv`` of a validated batch, every cell as text."""
    return pd.read_csv(out / name, dtype=str, keep_default_na=False)
