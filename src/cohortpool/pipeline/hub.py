"""The hub half: submission -> validated batch -> warehouse, and the checks across sites.

Each function is one hop between stages that may not import each other, returning the small, PHI-free
records of :mod:`cohortpool.pipeline.records` that the flows pass on and the night's summary counts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cohortpool.contract.csvio import formula_safe
from cohortpool.contract.files import sha256_file
from cohortpool.pipeline.records import LoadSummary, SubmissionSummary, ValidationSummary
from cohortpool.validate import validate_submission
from cohortpool.validate.distribution import compare_sites
from cohortpool.warehouse import WarehouseLockedError, checksum, load_batch

__all__ = [
    "WarehouseLockedError",
    "compare_site_distributions",
    "find_submissions",
    "load_into_warehouse",
    "validate_into_batch",
    "warehouse_checksum",
]

log = logging.getLogger(__name__)


def find_submissions(root: Path) -> list[SubmissionSummary]:
    """Every submission under ``root/<site>/<night>/`` (what sites delivered to the hub)."""
    found = []
    for manifest in sorted(root.glob("*/*/submission.json")):
        facts = json.loads(manifest.read_text(encoding="utf-8"))
        found.append(
            SubmissionSummary(
                facts["site_id"], facts["night"], manifest.parent, sha256_file(manifest), facts["counts"], {}
            )
        )
    return found


def validate_into_batch(
    submission_dir: Path, validated_dir: Path, progress: Callable[[int, int], None] | None = None
) -> ValidationSummary:
    """Submission -> validated batch: accepted rows, quarantine, warnings, Data Docs."""
    outcome = validate_submission(submission_dir, validated_dir, progress=progress)
    tables = {
        name: {
            "rows_in": t.rows_in,
            "accepted": t.accepted,
            "quarantined": t.quarantined,
            "warnings": t.warnings,
            "rejected": t.rejected,
        }
        for name, t in outcome.tables.items()
    }
    return ValidationSummary(outcome.site_id, outcome.night, outcome.batch_id, outcome.out_dir, tables)


def load_into_warehouse(db_path: Path, validated_dir: Path, wait_seconds: float = 600.0) -> LoadSummary:
    """Validated batch -> warehouse; if another run holds the warehouse, say so and wait for it."""
    waited = False
    try:
        result = load_batch(db_path, validated_dir)
    except WarehouseLockedError:
        waited = True
        log.warning(
            "warehouse %s is held by another run (DuckDB allows one writer): waiting up to %.0f s for it",
            db_path,
            wait_seconds,
        )
        result = load_batch(db_path, validated_dir, wait_seconds=wait_seconds)
    return LoadSummary(
        result.site_id,
        result.batch_id,
        result.status,
        result.load_seq,
        dict(result.rows),
        result.superseded,
        waited,
        result.late_rows,
        result.withdrawn_patients,
        result.erased_rows,
    )


def compare_site_distributions(validated_root: Path, out_csv: Path) -> int:
    """Cross-site distribution warnings over each site's latest accepted clinical rows; returns how many."""
    latest = {
        d.name: sorted(n for n in d.iterdir() if (n / "summary.json").is_file())
        for d in validated_root.iterdir()
        if d.is_dir()
    }
    frames = {
        site: pd.read_parquet(nights[-1] / "accepted" / "clinical.parquet")
        for site, nights in latest.items()
        if nights
    }
    warnings = compare_sites(frames)
    warnings.map(formula_safe).to_csv(out_csv, index=False, lineterminator="\n")
    return len(warnings)


def warehouse_checksum(db_path: Path) -> str:
    """The content checksum of the analysis views (provenance of the report)."""
    return checksum(db_path, wait_seconds=60.0)
