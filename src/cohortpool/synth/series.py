"""What series a study has at a site, and how big: small for the demo, realistic with ``--full-size``."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

from cohortpool.synth.vendors import MrProtocol, SiteProfile


@dataclass(frozen=True)
class Sizes:
    """Matrix sizes and series lengths: small for the demo, realistic with ``--full-size``."""

    xr: tuple[int, int]
    ct: tuple[int, int]
    ct_slices: tuple[int, int]
    mr_sag: tuple[int, int]
    mr_ax: tuple[int, int]
    mr_slices: tuple[int, int]


SMALL = Sizes(xr=(64, 64), ct=(64, 64), ct_slices=(4, 4), mr_sag=(64, 64), mr_ax=(64, 64), mr_slices=(3, 3))
FULL = Sizes(
    xr=(2048, 2048),
    ct=(512, 512),
    ct_slices=(60, 120),
    mr_sag=(420, 280),
    mr_ax=(280, 458),
    mr_slices=(15, 20),
)


@dataclass(frozen=True)
class SeriesPlan:
    """One series to write: what it is and how many images."""

    number: int
    description: str
    kind: str  # XR, CT, MR
    count: int
    rows: int
    cols: int
    view: str = ""  # XR: AP or LL
    protocol: MrProtocol | None = None


def safe_name(text: str) -> str:
    """A folder-name form of a description, as PACS exporters write them."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "SERIES"


def da(day: dt.date) -> str:
    """A date as a DICOM DA value."""
    return f"{day:%Y%m%d}"


def plus_minutes(hhmmss: str, minutes: int) -> str:
    """A DICOM TM ``minutes`` after ``hhmmss`` (series start after their study)."""
    t = dt.datetime(2000, 1, 1, int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:]))
    return f"{t + dt.timedelta(minutes=minutes):%H%M%S}"


def series_plans(
    profile: SiteProfile, modality: str, sizes: Sizes, rng: np.random.Generator
) -> list[SeriesPlan]:
    """The series of one study at this site."""
    if modality == "XR":
        rows, cols = sizes.xr
        return [
            SeriesPlan(1, "L-SPINE AP", "XR", 1, rows, cols, view="AP"),
            SeriesPlan(2, "L-SPINE LAT", "XR", 1, rows, cols - (cols // 8 if cols > 64 else 0), view="LL"),
        ]
    if modality == "CT":
        lo, hi = sizes.ct_slices
        count = int(rng.integers(lo, hi + 1))
        return [SeriesPlan(2, f"Spine {profile.ct_slice_thickness:g}mm", "CT", count, *sizes.ct)]
    plans = []
    for k, proto in enumerate(profile.mr_protocols):
        lo, hi = sizes.mr_slices
        rows, cols = sizes.mr_sag if proto.plane == "SAG" else sizes.mr_ax
        plans.append(
            SeriesPlan(
                301 + 100 * k,
                proto.description,
                "MR",
                int(rng.integers(lo, hi + 1)),
                rows,
                cols,
                protocol=proto,
            )
        )
    return plans
