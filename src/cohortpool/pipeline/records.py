"""What each step of the night returns, and the night's summary built from it.

Every record holds counts, site ids, nights, batch ids and output paths under the run's output folder,
never a value from a hospital's file: they go into Prefect's result cache, its artifacts and its logs,
which a hub operator reads. Error texts are kept to the exception's type in artifacts (a message can
quote a drop path, and drop paths carry patient names); the full message stays in the local terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OK = "ok"
QUARANTINED = "quarantined"
FAILED = "failed"


@dataclass(frozen=True)
class SubmissionSummary:
    """One site-night packaged into a submission (the site-edge half)."""

    site_id: str
    night: str
    path: Path
    #: sha256 of submission.json, which lists the sha256 of every file: the submission's content key
    sha256: str
    #: input_files, deidentified, quarantined, duplicate, series, clinical, reads
    counts: dict[str, int]
    #: quarantined files by reason kind (e.g. "burned-in annotation": 1)
    reasons: dict[str, int]
    #: why the feature tables could not be pseudonymised (the submission then holds DICOM only)
    table_error: str | None = None

    @property
    def files_quarantined(self) -> int:
        return self.counts.get("quarantined", 0)


@dataclass(frozen=True)
class ValidationSummary:
    """One submission validated into a batch (the hub's first step)."""

    site_id: str
    night: str
    batch_id: str
    path: Path
    #: table -> rows_in, accepted, quarantined, warnings, rejected (None or why the table was rejected)
    tables: dict[str, dict[str, Any]]

    @property
    def rows_quarantined(self) -> int:
        return sum(int(t["quarantined"]) for t in self.tables.values())

    @property
    def rows_warned(self) -> int:
        return sum(int(t["warnings"]) for t in self.tables.values())

    @property
    def rejected_tables(self) -> list[str]:
        return sorted(name for name, t in self.tables.items() if t["rejected"])

    @property
    def data_docs(self) -> Path:
        return self.path / "data_docs" / "index.html"


@dataclass(frozen=True)
class LoadSummary:
    """One validated batch in the warehouse."""

    site_id: str
    batch_id: str
    #: "loaded", or "unchanged" when the same content was already loaded
    status: str
    load_seq: int
    rows: dict[str, int]
    superseded: int
    #: the warehouse was held by another run and this load waited for it
    waited_for_lock: bool = False
    #: rows that arrived after a newer night of the site: kept for the record, never current
    late_rows: int = 0


@dataclass
class SiteNightOutcome:
    """Everything that happened to one site-night, step by step; stops at the first failed step."""

    site_id: str
    night: str
    submission: SubmissionSummary | None = None
    validation: ValidationSummary | None = None
    load: LoadSummary | None = None
    failed_step: str | None = None
    #: the exception's type (its message stays in the terminal: it may quote a path)
    error: str | None = None
    #: the full error message, for the local terminal only (never published as an artifact)
    detail: str | None = None

    def fail(self, step: str, exc: BaseException) -> None:
        self.failed_step, self.error, self.detail = step, type(exc).__name__, str(exc)

    @property
    def status(self) -> str:
        if self.failed_step is not None:
            return FAILED
        if self.files_quarantined or self.rows_quarantined or self.table_problem:
            return QUARANTINED
        return OK

    @property
    def files_quarantined(self) -> int:
        return self.submission.files_quarantined if self.submission else 0

    @property
    def rows_quarantined(self) -> int:
        return self.validation.rows_quarantined if self.validation else 0

    @property
    def table_problem(self) -> bool:
        """A table could not be pseudonymised at the site, or was rejected whole at the hub."""
        sub = self.submission is not None and self.submission.table_error is not None
        return sub or bool(self.validation and self.validation.rejected_tables)


@dataclass
class NightSummary:
    """The night: every site-night's outcome, the sites with nothing new, and the consortium outputs."""

    outcomes: list[SiteNightOutcome] = field(default_factory=list)
    #: configured sites with no new or re-delivered night in the landing folder
    idle_sites: list[str] = field(default_factory=list)
    #: site folders in the landing folder that the configuration does not list (not processed)
    unknown_sites: list[str] = field(default_factory=list)
    warehouse: Path | None = None
    warehouse_sha256: str | None = None
    report: Path | None = None
    #: cross-site distribution warnings (validated/distribution_warnings.csv): shown, never quarantined
    distribution_warnings: int = 0
    #: the step of the consortium part (load order, analysis, report) that failed, with its error type
    hub_error: str | None = None
    hub_detail: str | None = None

    @property
    def exit_code(self) -> int:
        """0: everything went through clean; 1: something was quarantined or failed (contract)."""
        if self.hub_error or any(o.status != OK for o in self.outcomes):
            return 1
        return 0

    @property
    def data_docs(self) -> list[Path]:
        return [o.validation.data_docs for o in self.outcomes if o.validation is not None]

    def quarantine_rows(self) -> list[dict[str, Any]]:
        """One row per site-night: counts only (the Prefect table artifact)."""
        rows = []
        for o in sorted(self.outcomes, key=lambda o: (o.site_id, o.night)):
            rows.append(
                {
                    "site_id": o.site_id,
                    "night": o.night,
                    "status": o.status,
                    "files_in": o.submission.counts.get("input_files", 0) if o.submission else 0,
                    "files_quarantined": o.files_quarantined,
                    "duplicates": o.submission.counts.get("duplicate", 0) if o.submission else 0,
                    "rows_quarantined": o.rows_quarantined,
                    "rows_with_warnings": o.validation.rows_warned if o.validation else 0,
                    "tables_rejected": ", ".join(o.validation.rejected_tables) if o.validation else "",
                }
            )
        return rows

    def markdown(self) -> str:
        """The night's summary for the Prefect UI: per site what happened, and where the outputs are."""
        failed = sum(1 for o in self.outcomes if o.status == FAILED)
        lines = [
            "# cohortpool nightly run",
            "",
            f"{len(self.outcomes)} site-night(s) processed, {failed} failed; exit code {self.exit_code}.",
            "",
            "| site | night | status | files in | de-identified | files quarantined | rows accepted "
            "| rows quarantined | batch | warehouse |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for o in sorted(self.outcomes, key=lambda o: (o.site_id, o.night)):
            counts = o.submission.counts if o.submission else {}
            accepted = sum(int(t["accepted"]) for t in o.validation.tables.values()) if o.validation else 0
            status = o.status if o.failed_step is None else f"failed at {o.failed_step} ({o.error})"
            lines.append(
                f"| {o.site_id} | {o.night} | {status} | {counts.get('input_files', 0)} "
                f"| {counts.get('deidentified', 0)} | {o.files_quarantined} | {accepted} "
                f"| {o.rows_quarantined} | {o.validation.batch_id if o.validation else ''} "
                f"| {_load_text(o.load)} |"
            )
        lines.append("")
        if self.idle_sites:
            lines.append(f"Nothing new from: {', '.join(self.idle_sites)}.")
        if self.unknown_sites:
            lines.append(
                f"Not in the configuration, left alone: {', '.join(self.unknown_sites)} "
                "(add them to `sites` in cohortpool.yaml to process them)."
            )
        if self.hub_error:
            lines.append(f"Consortium step failed: {self.hub_error}.")
        if self.report is not None:
            lines.append(f"Report: `{self.report / 'report.html'}`.")
        if self.warehouse is not None:
            lines.append(f"Warehouse: `{self.warehouse}` (content sha256 `{self.warehouse_sha256}`).")
        return "\n".join(lines) + "\n"


def _load_text(load: LoadSummary | None) -> str:
    if load is None:
        return ""
    if load.late_rows:
        return f"{load.status}; {load.late_rows} rows older than a newer night's, kept as history"
    return load.status
