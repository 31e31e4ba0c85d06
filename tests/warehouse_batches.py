"""Validated batches (docs/data_contract.md section 3) for the warehouse tests and benchmark.

The validation stage writes the real thing; these fixtures follow the contract so the warehouse can be
tested on its own: accepted/*.parquet with the submission columns plus lineage, quarantine.csv,
warnings.csv and summary.json. Generation is vectorised (numpy) so a 10^6-read batch takes seconds,
and seeded so the same arguments give the same files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from cohortpool.contract import FINDINGS

LEVELS = tuple([f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)])
ISSUE_COLUMNS = ["table", "source_row", "key", "expectation", "severity", "reason", "value"]


def _hex_ids(prefix: str, site_id: str, n: int, salt: str = "") -> np.ndarray:
    # stand-ins for keyed HMAC pseudonyms: 16 upper-case hex digits, distinct per site and index
    return np.array(
        [
            prefix + hashlib.sha256(f"{site_id}|{salt}|{i}".encode()).hexdigest()[:16].upper()
            for i in range(n)
        ],
        dtype=object,
    )


def make_tables(
    site_id: str, n_patients: int, *, seed: int = 0, levels_per_patient: int = 2, patient_offset: int = 0
) -> dict[str, pd.DataFrame]:
    """Submission tables (no lineage yet) for ``n_patients`` patients of one site.

    Each patient has ``levels_per_patient`` fractured levels read on XR, CT and MR, and six series
    (DX, CT, four MR). ``patient_offset`` starts the patient numbering elsewhere (a later night's new
    patients).
    """
    rng = np.random.default_rng(seed)
    idx = np.arange(patient_offset, patient_offset + n_patients)
    pids = _hex_ids("P", site_id, patient_offset + n_patients)[patient_offset:]
    diagnosis = np.where(idx % 3 == 0, "MET", "OP")
    clinical = pd.DataFrame(
        {
            "site_id": site_id,
            "patient_id": pids,
            "age_years": rng.integers(45, 90, n_patients).astype("int32"),
            "sex": np.where(rng.random(n_patients) < 0.6, "F", "M"),
            "height_cm": np.round(rng.normal(163, 8, n_patients), 1),
            "weight_kg": np.round(rng.normal(62, 10, n_patients), 1),
            "bmi": np.round(rng.normal(23, 3, n_patients), 2),
            "dxa_t_score": np.round(rng.normal(-2.4, 0.9, n_patients), 1),
            "diagnosis": diagnosis,
            "pathology_confirmed": np.where(diagnosis == "MET", "yes", "no"),
            "primary_tumour": np.where(diagnosis == "MET", "lung", None),
            "first_exam_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(idx % 700, unit="D"),
        }
    )
    clinical["first_exam_date"] = clinical["first_exam_date"].dt.date

    n_levels = n_patients * levels_per_patient
    p_of_level = np.repeat(np.arange(n_patients), levels_per_patient)
    level_names = np.array(LEVELS, dtype=object)[(np.arange(n_levels) * 5 + p_of_level) % len(LEVELS)]
    # distinct levels per patient: consecutive indices step by 5 through 17 levels
    modalities = np.array(["XR", "CT", "MR"], dtype=object)
    n_reads = n_levels * 3
    p_of_read = np.repeat(p_of_level, 3)
    reads = pd.DataFrame(
        {
            "site_id": site_id,
            "patient_id": pids[p_of_read],
            "accession_id": _hex_ids("A", site_id, 3)[np.tile(np.arange(3), n_levels)],
            "modality": np.tile(modalities, n_levels),
            "level": np.repeat(level_names, 3),
        }
    )
    for finding in FINDINGS:
        reads[finding] = np.where(rng.random(n_reads) < 0.4, "yes", "no")
    reads["genant_grade"] = rng.integers(0, 4, n_reads).astype("int32")
    reads["height_loss_pct"] = np.round(rng.uniform(5, 60, n_reads), 1)

    series_modalities = np.array(["DX", "CT", "MR", "MR", "MR", "MR"], dtype=object)
    families = np.array([None, None, "T1", "T2", "FS", "T2"], dtype=object)
    n_series = n_patients * 6
    p_of_series = np.repeat(np.arange(n_patients), 6)
    is_mr = np.tile(series_modalities == "MR", n_patients)
    manifest = pd.DataFrame(
        {
            "site_id": site_id,
            "patient_id": pids[p_of_series],
            "accession_id": _hex_ids("A", site_id, 3)[np.tile([0, 1, 2, 2, 2, 2], n_patients)],
            "study_uid": [f"2.25.{1000 + p}" for p in p_of_series + patient_offset],
            "series_uid": [f"2.25.{10**9 + s}" for s in np.arange(n_series) + patient_offset * 6],
            "modality": np.tile(series_modalities, n_patients),
            "study_date": np.repeat(clinical["first_exam_date"].to_numpy(), 6),
            "manufacturer": "ACME",
            "model": "Imager 3000",
            "field_strength": np.where(is_mr, 1.5, np.nan),
            "sequence_family": np.tile(families, n_patients),
            "repetition_time": np.where(is_mr, 500.0, np.nan),
            "echo_time": np.where(is_mr, 10.0, np.nan),
            "slice_thickness": 3.0,
            "pixel_spacing": 0.7,
            "image_rows": np.int32(512),
            "image_columns": np.int32(512),
            "instance_count": np.int32(20),
        }
    )
    return {"clinical": clinical, "reads": reads, "imaging_manifest": manifest}


def _frame_sha256(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def write_batch(
    out_dir: Path,
    site_id: str,
    night: str,
    tables: dict[str, pd.DataFrame],
    *,
    quarantine: list[dict[str, object]] | None = None,
    warnings: list[dict[str, object]] | None = None,
    rows_in_extra: dict[str, int] | None = None,
    withdrawn: list[str] | None = None,
) -> Path:
    """Write ``tables`` (submission columns, optionally ``source_row``) as a validated batch.

    ``quarantine`` rows count as quarantined in summary.json for their table; ``rows_in`` is accepted
    plus quarantined plus ``rows_in_extra``. ``withdrawn`` (patient pseudonyms) is written as
    withdrawn.csv. Returns the batch folder.
    """
    digests = {name: _frame_sha256(frame) for name, frame in sorted(tables.items())}
    if withdrawn is not None:
        digests["withdrawn"] = hashlib.sha256("\n".join(withdrawn).encode()).hexdigest()
    content = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()
    batch_id = f"{site_id}_{night}_{content[:12]}"
    folder = Path(out_dir)
    (folder / "accepted").mkdir(parents=True, exist_ok=True)
    quarantine = quarantine or []
    summary_tables: dict[str, dict[str, int]] = {}
    for name, frame in tables.items():
        out = frame.copy()
        if "source_row" not in out:
            out["source_row"] = np.arange(1, len(out) + 1, dtype="int32")
        out["batch_id"] = batch_id
        out["source_file"] = f"{name}.csv"
        out["source_sha256"] = digests[name]
        out.to_parquet(folder / "accepted" / f"{name}.parquet", index=False)
        n_quarantined = len({q["source_row"] for q in quarantine if q["table"] == name})
        summary_tables[name] = {
            "rows_in": len(out) + n_quarantined + (rows_in_extra or {}).get(name, 0),
            "accepted": len(out),
            "quarantined": n_quarantined,
            "warnings": len([w for w in warnings or [] if w["table"] == name]),
            "rejected": None,
            "file": f"{name}.csv",
            "source_sha256": digests[name],
        }
    pd.DataFrame(quarantine, columns=ISSUE_COLUMNS).to_csv(folder / "quarantine.csv", index=False)
    if withdrawn is not None:
        pd.DataFrame({"site_id": site_id, "patient_id": withdrawn}, columns=["site_id", "patient_id"]).to_csv(
            folder / "withdrawn.csv", index=False
        )
    pd.DataFrame(warnings or [], columns=ISSUE_COLUMNS).to_csv(folder / "warnings.csv", index=False)
    summary = {
        "site_id": site_id,
        "night": night,
        "batch_id": batch_id,
        "submission_sha256": content,
        "status": "issues" if quarantine else "passed",
        "tables": summary_tables,
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return folder


def build_once(base_temp: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` once per test session, shared by every pytest-xdist worker.

    ``base_temp`` is ``tmp_path_factory.getbasetemp()``. Workers share its parent; an exclusive file
    lock makes the first worker build and the others wait, then reuse the folder (treat it as
    read-only: copy a DuckDB file out of it before opening it read-write). We do not rely on
    ``xdist_group`` here: with pytest 9.2 and xdist 3.8 it does not keep a group on one worker.
    """
    root = base_temp.parent if os.environ.get("PYTEST_XDIST_WORKER") else base_temp
    folder = root / name
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".built").exists():
            folder.mkdir(parents=True, exist_ok=True)
            build(folder)
            (folder / ".built").touch()
    return folder


def warehouse_rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every warehouse table, sorted: what "unchanged" means in the load tests."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
        return {
            f"{s}.{t}": sorted(con.execute(f'SELECT * FROM "{s}"."{t}"').fetchall(), key=repr)
            for s, t in tables
        }
