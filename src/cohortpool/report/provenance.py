"""What a report was computed from: software, plan, warehouse checksum and the batches behind each result.

No wall-clock time appears anywhere: the same warehouse and plan give the same provenance, byte for byte,
so the report itself is reproducible. The warehouse checksum identifies the data; the batches say which
site-night submissions fed each table and figure.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from cohortpool import __version__
from cohortpool.stats.result import ResultTable

#: libraries whose versions can change a number or a figure
LIBRARIES = ("numpy", "pandas", "scipy", "statsmodels", "duckdb", "matplotlib", "openpyxl", "pyreadstat")
_POOLED = {"", "all", "ALL", "pooled", "Pooled", "overall"}


@dataclass(frozen=True)
class Provenance:
    """Everything printed in the report's provenance section."""

    plan_name: str
    plan_sha256: str
    warehouse_sha256: str
    #: site_id -> the batch ids of the rows the analyses read
    batches: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    software: str = f"cohortpool {__version__}"
    libraries: tuple[tuple[str, str], ...] = ()

    def batches_behind(self, result: ResultTable) -> tuple[str, ...]:
        """The batches of every site a result draws on (all sites for pooled or unstratified results)."""
        sites = sites_of(result)
        chosen = sorted(self.batches) if sites is None else [s for s in sorted(self.batches) if s in sites]
        return tuple(b for site in chosen for b in self.batches[site])


def library_versions(names: Sequence[str] = LIBRARIES) -> tuple[tuple[str, str], ...]:
    """Installed versions of the libraries that compute and draw (absent ones are skipped)."""
    found: list[tuple[str, str]] = []
    for name in names:
        try:
            found.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return tuple(found)


def batches_by_site(frames: Mapping[str, pd.DataFrame]) -> dict[str, tuple[str, ...]]:
    """site_id -> sorted batch ids, from the ``site_id``/``batch_id`` columns of the analysis views."""
    pairs: set[tuple[str, str]] = set()
    for frame in frames.values():
        if {"site_id", "batch_id"} <= set(frame.columns):
            unique = frame[["site_id", "batch_id"]].dropna().drop_duplicates()
            pairs.update((str(s), str(b)) for s, b in unique.itertuples(index=False))
    result: dict[str, list[str]] = {}
    for site, batch in sorted(pairs):
        result.setdefault(site, []).append(batch)
    return {site: tuple(batches) for site, batches in result.items()}


def sites_of(result: ResultTable) -> set[str] | None:
    """The sites a result is computed on; None means all of them (pooled, or no site column)."""
    if "site_id" not in result.frame.columns:
        return None
    sites: set[str] = set()
    for value in result.frame["site_id"]:
        text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        if text in _POOLED:
            return None
        sites.add(text)
    return sites or None
