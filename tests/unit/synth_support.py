"""One synthetic consortium per test process, shared by the synth test modules (it takes seconds)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import pytest

from cohortpool.synth import write_consortium

NIGHT = "2025-03-01"
_CACHE: dict[tuple[Any, ...], tuple[Path, dict[str, Any]]] = {}


def synthesize(factory: pytest.TempPathFactory, **kwargs: Any) -> tuple[Path, dict[str, Any]]:
    """``write_consortium(**kwargs)`` into a fresh temporary folder, once per process and arguments."""
    key = tuple(sorted(kwargs.items()))
    if key not in _CACHE:
        out = factory.mktemp("consortium")
        _CACHE[key] = (out, write_consortium(out, **kwargs))
    return _CACHE[key]


def drop(out: Path, site: str) -> Path:
    return out / site / NIGHT


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
