"""Write the consortium: ``OUT_DIR/<site>/<night>/{dicom/, clinical.csv, reads.csv}`` and ``_truth.json``."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cohortpool.synth.cohort import Cohort, build_cohort
from cohortpool.synth.defects import kinds_for, plant_files, plant_rows, truth_entries
from cohortpool.synth.dicom_builder import FULL, SMALL, ProtocolCache, patient_instances
from cohortpool.synth.tables import CLINICAL_COLUMNS, READS_COLUMNS, clinical_rows, reads_rows, write_csv
from cohortpool.synth.vendors import site_profiles

#: a fixed default night keeps the default output byte-identical from day to day
DEFAULT_NIGHT = dt.date(2025, 3, 1)
TRUTH_FILE = "_truth.json"

#: progress callback: (site_id, patients written, patients in site)
Progress = Callable[[str, int, int], None]


def _write_site(
    out_dir: Path,
    cohort: Cohort,
    sites: int,
    seed: int,
    full_size: bool,
    progress: Progress | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    profile = cohort.profile
    drop_rel = f"{profile.site_id}/{cohort.night.isoformat()}"
    drop = out_dir / drop_rel
    if drop.exists():  # a rerun replaces this drop only, never anything else under OUT_DIR
        shutil.rmtree(drop)
    dicom_dir = drop / "dicom"
    dicom_dir.mkdir(parents=True)
    kinds = kinds_for(profile.number, sites)
    clinical = clinical_rows(cohort)
    reads = reads_rows(cohort)
    planted = plant_rows(cohort, kinds, seed, clinical, reads)
    write_csv(drop / "clinical.csv", CLINICAL_COLUMNS, clinical)
    write_csv(drop / "reads.csv", READS_COLUMNS, reads)
    sizes = FULL if full_size else SMALL
    files: list[str] = []
    total = len(cohort.patients)
    cache: ProtocolCache = {}
    for n, patient in enumerate(cohort.patients, start=1):
        made: set[str] = set()
        for folder, name, data in patient_instances(cohort, patient, seed, sizes, cache):
            if folder not in made:
                (dicom_dir / folder).mkdir(parents=True, exist_ok=True)
                made.add(folder)
            (dicom_dir / folder / name).write_bytes(data)
            files.append(f"{folder}/{name}")
        if progress is not None:
            progress(profile.site_id, n, total)
    planted += plant_files(cohort, kinds, seed, dicom_dir, sorted(files))
    entries = truth_entries(cohort, planted, clinical, reads, drop_rel)
    summary = {
        "site_id": profile.site_id,
        "drop": str(drop),
        "patients": total,
        "patients_op": sum(p.diagnosis == "OP" for p in cohort.patients),
        "patients_met": sum(p.diagnosis == "MET" for p in cohort.patients),
        "vertebrae": sum(len(p.vertebrae) for p in cohort.patients),
        "clinical_rows": len(clinical),
        "reads_rows": len(reads),
        "dicom_files": sum(1 for f in dicom_dir.rglob("*") if f.is_file()),
        "defects": len(entries),
        "vendors": {
            "XR": profile.xr.manufacturer,
            "CT": profile.ct.manufacturer,
            "MR": profile.mr.manufacturer,
        },
    }
    return summary, entries


def write_consortium(
    out_dir: Path,
    *,
    sites: int = 3,
    seed: int = 7,
    full_size: bool = False,
    night: dt.date | None = None,
    max_patients: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write a synthetic consortium's night of exports; return a JSON-able summary.

    Parameters
    ----------
    out_dir
        Landing folder; each site's drop goes to ``out_dir/<site_id>/<night>/`` (replaced if present) and
        the list of planted defects to ``out_dir/_truth.json``.
    sites
        Number of sites; ``site01`` is the reference study's cohort, the others are heterogeneous.
    seed
        Same seed, same bytes.
    full_size
        Realistic matrices and series lengths (for benchmarks) instead of small demo images.
    night
        The export night (drop folder name; exam dates fall in the 30 months before it). Fixed default.
    max_patients
        Keep only the first N patients of each site (benchmarks); site 1 then no longer matches the paper.
    progress
        Called after each patient's files are written.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if max_patients is not None and max_patients < 1:
        raise ValueError(f"max_patients must be >= 1, got {max_patients}")
    night = night or DEFAULT_NIGHT
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    site_summaries: list[dict[str, Any]] = []
    defects: list[dict[str, Any]] = []
    for profile in site_profiles(sites, seed):
        cohort = build_cohort(profile, seed, night)
        if max_patients is not None:
            cohort.patients = cohort.patients[:max_patients]
        summary, entries = _write_site(out_dir, cohort, sites, seed, full_size, progress)
        site_summaries.append(summary)
        defects += entries
    truth = out_dir / TRUTH_FILE
    truth.write_text(json.dumps({"defects": defects}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return {
        "out_dir": str(out_dir),
        "seed": seed,
        "night": night.isoformat(),
        "full_size": full_size,
        "sites": site_summaries,
        "site_ids": [s["site_id"] for s in site_summaries],
        "truth": str(truth),
        "defects": len(defects),
    }
