"""Read a validated batch folder (docs/data_contract.md section 3) before anything touches the warehouse.

Every problem with the folder itself (a missing file, an unreadable summary, a column the contract does
not know) is found here and reported as :class:`BatchError` naming the file, so a load either starts
with a well-formed batch or not at all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cohortpool.contract.erasure import read_record
from cohortpool.contract.files import sha256_file, sha256_listing

#: The data tables of a batch, in load order.
TABLES: tuple[str, ...] = ("clinical", "reads", "imaging_manifest")
#: Lineage columns every accepted table carries beside the submission columns.
LINEAGE: tuple[str, ...] = ("batch_id", "source_file", "source_sha256", "source_row")
#: Columns of quarantine.csv and warnings.csv.
ISSUE_COLUMNS: tuple[str, ...] = ("table", "source_row", "key", "expectation", "severity", "reason", "value")
#: The optional withdrawals of a batch (patients who revoked consent): ``withdrawn.csv``, these columns.
WITHDRAWN_FILE = "withdrawn.csv"
WITHDRAWN_COLUMNS: tuple[str, ...] = ("site_id", "patient_id")
_COUNT_KEYS: tuple[str, ...] = ("rows_in", "accepted", "quarantined", "warnings")


class BatchError(ValueError):
    """The validated batch folder does not follow the contract; nothing was loaded."""


@dataclass(frozen=True)
class BatchFile:
    """One file of the batch with its checksum, path relative to the batch folder."""

    relpath: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ValidatedBatch:
    """What ``cohortpool validate`` wrote for one site-night."""

    path: Path
    site_id: str
    night: date
    batch_id: str
    summary_text: str
    counts: dict[str, dict[str, Any]]
    #: summary.json's submission_sha256 and status, when validation wrote them
    submission_sha256: str | None
    validation_status: str | None
    files: tuple[BatchFile, ...]
    content_sha256: str
    received_at: datetime

    def table_path(self, table: str) -> Path:
        """``accepted/<table>.parquet``."""
        return self.path / "accepted" / f"{table}.parquet"

    @property
    def quarantine_path(self) -> Path:
        return self.path / "quarantine.csv"

    @property
    def warnings_path(self) -> Path | None:
        path = self.path / "warnings.csv"
        return path if path.is_file() else None

    @property
    def withdrawn_path(self) -> Path | None:
        """``withdrawn.csv`` (site_id, patient_id), present when the submission withdrew patients."""
        path = self.path / WITHDRAWN_FILE
        return path if path.is_file() else None


def _counts(summary: dict[str, Any], summary_path: Path) -> dict[str, dict[str, Any]]:
    """Per-table counts of summary.json: four integers, and ``rejected`` (why a whole table was
    refused, or null), ``file`` and ``source_sha256`` (the submission file)."""
    holder = summary.get("tables")
    counts: dict[str, dict[str, Any]] = {}
    for table in TABLES:
        entry = holder.get(table) if isinstance(holder, dict) else None
        if not isinstance(entry, dict):
            raise BatchError(f"{summary_path}: no tables.{table} counts (contract section 3)")
        row: dict[str, Any] = {}
        for key in _COUNT_KEYS:
            value = entry.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BatchError(
                    f"{summary_path}: tables.{table}.{key} must be a non-negative integer, got {value!r}"
                )
            row[key] = value
        for key, name in (("rejected", "rejected_reason"), ("file", "source_file"), ("source_sha256", None)):
            value = entry.get(key)
            if value is not None and not isinstance(value, str):
                raise BatchError(f"{summary_path}: tables.{table}.{key} must be text or null, got {value!r}")
            row[name or key] = value or None
        row["withdrawn_rows"] = 0  # rows the hub erased from the batch before its load (read_batch)
        counts[table] = row
    return counts


def _check_columns(path: Path, expected: tuple[str, ...]) -> None:
    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise BatchError(f"{path}: not a readable Parquet file ({exc}); re-run cohortpool validate") from exc
    missing = [c for c in expected if c not in names]
    unknown = [c for c in names if c not in expected]
    if missing or unknown:
        raise BatchError(
            f"{path}: columns differ from the contract (docs/data_contract.md sections 2-3): "
            f"missing {missing}, unknown {unknown}; re-run cohortpool validate with a matching version"
        )


def _check_issue_file(path: Path) -> None:
    try:
        header = pacsv.open_csv(path).schema.names
    except Exception as exc:  # pyarrow raises several types for a malformed CSV
        raise BatchError(f"{path}: not a readable CSV file ({exc})") from exc
    missing = [c for c in ISSUE_COLUMNS if c not in header]
    if missing:
        raise BatchError(f"{path}: missing column(s) {missing}; expected {list(ISSUE_COLUMNS)}")


def _check_withdrawn_file(path: Path, site_id: str) -> None:
    """withdrawn.csv names exactly its two columns, and only patients of the batch's own site."""
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(WITHDRAWN_COLUMNS, pa.string())),
        )
    except Exception as exc:  # pyarrow raises several types for a malformed CSV
        raise BatchError(f"{path}: not a readable CSV file ({exc}); re-run cohortpool validate") from exc
    if tuple(table.column_names) != WITHDRAWN_COLUMNS:
        raise BatchError(
            f"{path}: columns {table.column_names}, expected {list(WITHDRAWN_COLUMNS)} (contract section 3)"
        )
    sites = {s for s in table.column("site_id").to_pylist() if s != site_id}
    if sites:
        raise BatchError(
            f"{path}: withdraws patients of other site(s) {sorted(map(str, sites))}; a batch of {site_id} "
            "may withdraw only its own patients (re-run cohortpool validate)"
        )


def read_batch(path: str | Path, columns: dict[str, tuple[str, ...]]) -> ValidatedBatch:
    """Check the folder and checksum its files.

    Parameters
    ----------
    path
        The validated batch folder.
    columns
        For each table, the submission columns the warehouse stores (read from the warehouse's own
        catalogue, so the migrations stay the one definition); lineage columns are added here.
    """
    folder = Path(path)
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise BatchError(
            f"{folder}: no summary.json, so not a validated batch (cohortpool validate writes it)"
        )
    summary_text = summary_path.read_text(encoding="utf-8")
    try:
        summary = json.loads(summary_text)
    except json.JSONDecodeError as exc:
        raise BatchError(f"{summary_path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise BatchError(f"{summary_path}: invalid JSON: nested too deep") from exc
    if not isinstance(summary, dict):
        raise BatchError(f"{summary_path}: expected a JSON object")
    for key in ("site_id", "night", "batch_id"):
        if not isinstance(summary.get(key), str) or not summary[key]:
            raise BatchError(f"{summary_path}: missing or empty {key!r}")
    site_id, batch_id = summary["site_id"], summary["batch_id"]
    try:
        night = date.fromisoformat(summary["night"])
    except ValueError as exc:
        raise BatchError(f"{summary_path}: night {summary['night']!r} is not an ISO date") from exc
    if not re.fullmatch(rf"{re.escape(site_id)}_{re.escape(summary['night'])}_[0-9a-fA-F]{{12}}", batch_id):
        raise BatchError(
            f"{summary_path}: batch_id {batch_id!r} is not <site_id>_<night>_<12 hex> (contract section 3)"
        )
    counts = _counts(summary, summary_path)

    relpaths = [f"accepted/{t}.parquet" for t in TABLES] + [
        "quarantine.csv",
        "warnings.csv",
        "summary.json",
        WITHDRAWN_FILE,
    ]
    # the hub's erasure for withdrawn patients rewrote some files of this version of the batch: each is
    # named by the checksum it had when validated, so the batch is still the one loaded (loaded once)
    erasure = read_record(folder, sha256_file(summary_path))
    files: list[BatchFile] = []
    for rel in relpaths:
        file = folder / rel
        if not file.is_file():
            if rel in ("warnings.csv", WITHDRAWN_FILE):
                continue  # optional: a batch without flagged rows or withdrawals may omit it
            raise BatchError(f"{folder}: missing {rel} (contract section 3); re-run cohortpool validate")
        sha256, size = sha256_file(file), file.stat().st_size
        if erasure is not None:
            was = erasure.as_was(rel, sha256, size)
            if rel.startswith("accepted/") and was != (sha256, size):
                # rows erased before a first load count as erased for withdrawal (accepted = held + these)
                counts[rel.removeprefix("accepted/").removesuffix(".parquet")]["withdrawn_rows"] = (
                    erasure.files[rel].erased
                )
            sha256, size = was
        files.append(BatchFile(rel, sha256, size))
    for table in TABLES:
        _check_columns(folder / "accepted" / f"{table}.parquet", columns[table] + LINEAGE)
    _check_issue_file(folder / "quarantine.csv")
    if (folder / "warnings.csv").is_file():
        _check_issue_file(folder / "warnings.csv")
    if (folder / WITHDRAWN_FILE).is_file():
        _check_withdrawn_file(folder / WITHDRAWN_FILE, site_id)

    content = sha256_listing((f.relpath, f.sha256) for f in files)
    received_at = datetime.fromtimestamp(summary_path.stat().st_mtime, tz=UTC)
    return ValidatedBatch(
        path=folder.resolve(),
        site_id=site_id,
        night=night,
        batch_id=batch_id,
        summary_text=summary_text,
        counts=counts,
        files=tuple(files),
        content_sha256=content,
        received_at=received_at,
        submission_sha256=_optional_text(summary, "submission_sha256", summary_path),
        validation_status=_optional_text(summary, "status", summary_path),
    )


@dataclass(frozen=True)
class DeidCounts:
    """What the site's de-identification did with the night's DICOM files (``submission.json``
    ``counts``); None where no submission was given or it did not say."""

    input_files: int | None = None
    deidentified: int | None = None
    quarantined: int | None = None
    duplicates: int | None = None
    #: the k-anonymity of what was released (``privacy.k_anonymity``)
    k_anonymity: int | None = None
    #: the generalisations applied, in words (``privacy.generalisations``; "none" when none was)
    generalisations: str | None = None


def describe_generalisations(chosen: dict[str, Any]) -> str:
    """``submission.json``'s ``privacy.generalisations`` as the report prints it, e.g.
    "age in 5-year bands; first exam date to the month"; "none" when the tables went out as they are."""
    said = []
    band = chosen.get("age_band_years")
    if isinstance(band, int) and band > 1:
        said.append(f"age in {band}-year bands")
    top = chosen.get("age_top_code")
    if isinstance(top, int):
        said.append(f"ages from {top} shown as {top}")
    precision = chosen.get("first_exam_date_precision")
    if precision in ("month", "year"):
        said.append(f"first exam date to the {precision}")
    rare = chosen.get("merge_rare_categories_below")
    if isinstance(rare, int) and rare > 0:
        columns = ", ".join(str(c) for c in chosen.get("merged_columns") or []) or "categories"
        said.append(f"{columns} terms held by fewer than {rare} patients merged into 'other'")
    return "; ".join(said) or "none"


#: submission.json ``counts`` key -> DeidCounts field (data contract section 2)
_DEID_KEYS = {
    "input_files": "input_files",
    "deidentified": "deidentified",
    "quarantined": "quarantined",
    "duplicate": "duplicates",
}


def read_deid_counts(submission_dir: str | Path, batch: ValidatedBatch) -> DeidCounts:
    """The de-identification counts of the submission ``batch`` was validated from.

    The submission must be the batch's own: same site and night, and every table file it lists with
    the sha256 validation recorded for it (``summary.json`` ``source_sha256``), so the counts of
    another night or a later resubmission cannot be attached to this batch.
    """
    path = Path(submission_dir) / "submission.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BatchError(f"{path}: missing; pass the submission folder `cohortpool deid` wrote") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BatchError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise BatchError(f"{path}: expected a JSON object")
    named = (document.get("site_id"), document.get("night"))
    if named != (batch.site_id, batch.night.isoformat()):
        raise BatchError(
            f"{path}: submission of {named[0]} {named[1]}, but batch {batch.batch_id} is of "
            f"{batch.site_id} {batch.night.isoformat()}: pass the submission this batch was validated from"
        )
    listing = document.get("files")
    files: dict[str, Any] = listing if isinstance(listing, dict) else {}
    for table, summary in batch.counts.items():
        source = summary.get("source_file") or f"{table}.csv"
        listed, validated = files.get(source), summary.get("source_sha256")
        if listed and validated and listed != validated:
            raise BatchError(
                f"{path}: lists {source} with sha256 {str(listed)[:12]}, but batch {batch.batch_id} was "
                f"validated from {str(validated)[:12]}: a different submission"
            )
    counts = document.get("counts")
    reported: dict[str, Any] = counts if isinstance(counts, dict) else {}
    values: dict[str, int | None] = {}
    for key, name in _DEID_KEYS.items():
        value = reported.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise BatchError(f"{path}: counts.{key} must be a non-negative integer, got {value!r}")
        values[name] = value
    privacy = document.get("privacy")
    released: dict[str, Any] = privacy if isinstance(privacy, dict) else {}
    k = released.get("k_anonymity")
    chosen = released.get("generalisations")
    return DeidCounts(
        **values,
        k_anonymity=k if isinstance(k, int) and not isinstance(k, bool) and k >= 0 else None,
        generalisations=describe_generalisations(chosen) if isinstance(chosen, dict) else None,
    )


def _optional_text(summary: dict[str, Any], key: str, summary_path: Path) -> str | None:
    value = summary.get(key)
    if value is not None and not isinstance(value, str):
        raise BatchError(f"{summary_path}: {key} must be text, got {value!r}")
    return value
