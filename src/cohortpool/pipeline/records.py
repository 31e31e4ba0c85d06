"""What each step of the night returns, and the night's summary built from it.

Every record holds counts, site ids, nights, batch ids and output paths under the run's output folder,
never a value from a hospital's file: they go into Prefect's result cache, its artifacts and its logs,
which a hub operator reads. Error texts are kept to the exception's type in artifacts (a message can
quote a drop path, and drop paths carry patient names); the full message stays in the local terminal.

The counts add up, and the per-step lines and the summary table print the same numbers: files in =
de-identified + quarantined + duplicates; rows in = accepted (loaded) + quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OK = "ok"
QUARANTINED = "quarantined"
FAILED = "failed"
LATE = "late"

#: exit codes of the public contract (README, "Exit codes"), shared by the CLI
EXIT_OK = 0  # everything done
EXIT_ISSUES = 1  # done, with input quarantined or refused
EXIT_USAGE = 2  # bad usage or configuration: nothing changed
EXIT_FAILED = 3  # a site or stage failed while the others went on


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
    def files_in(self) -> int:
        return self.counts.get("input_files", 0)

    @property
    def deidentified(self) -> int:
        return self.counts.get("deidentified", 0)

    @property
    def files_quarantined(self) -> int:
        return self.counts.get("quarantined", 0)

    @property
    def duplicates(self) -> int:
        return self.counts.get("duplicate", 0)

    def line(self) -> str:
        """``1081 files in: 1079 de-identified, 2 quarantined, 0 duplicates`` (what the step did)."""
        return (
            f"{self.files_in} files in: {self.deidentified} de-identified, {self.files_quarantined} "
            f"quarantined, {self.duplicates} duplicates"
        )


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
    def rows_in(self) -> int:
        return sum(int(t["rows_in"]) for t in self.tables.values())

    @property
    def rows_accepted(self) -> int:
        return sum(int(t["accepted"]) for t in self.tables.values())

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

    def line(self) -> str:
        """``775 rows in: 772 accepted, 3 quarantined (batch ...)``."""
        rejected = f"; rejected whole: {', '.join(self.rejected_tables)}" if self.rejected_tables else ""
        return (
            f"{self.rows_in} rows in: {self.rows_accepted} accepted, {self.rows_quarantined} quarantined"
            f"{rejected} (batch {self.batch_id})"
        )


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
    #: patients the batch withdrew, and the rows of theirs the load erased (history included)
    withdrawn_patients: int = 0
    erased_rows: int = 0
    #: files of the hub's stores (submissions, validated batches, refused arrivals) rewritten or removed
    #: after the load to erase the site's withdrawn patients' values (:mod:`cohortpool.pipeline.erasure`)
    erased_files: int = 0

    @property
    def rows_loaded(self) -> int:
        """The batch's rows in the warehouse (loaded now, or already by an earlier run)."""
        return sum(self.rows.values())

    def line(self) -> str:
        """``772 rows loaded (load 2)`` or ``772 rows already loaded (load 2)``."""
        how = "loaded" if self.status == "loaded" else "already loaded"
        late = f"; {self.late_rows} older than a newer night's, kept as history" if self.late_rows else ""
        if self.withdrawn_patients:
            late += f"; {self.withdrawn_patients} patient(s) withdrawn, {self.erased_rows} rows erased"
        if self.erased_files:
            late += f"; {self.erased_files} file(s) of the hub rewritten or removed for withdrawn patients"
        return f"{self.rows_loaded} rows {how} (load {self.load_seq}){late}"


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
    def label(self) -> str:
        """``site02 2025-03-01``, or ``site01`` for a site that failed before any night (fetch, scan)."""
        return self.site_id if self.night == self.failed_step else f"{self.site_id} {self.night}"

    @property
    def status_text(self) -> str:
        """``ok``, ``quarantined`` or ``failed at de-identify: ReleaseBlockedError`` (no message: PHI)."""
        if self.failed_step is not None:
            return f"failed at {self.failed_step}: {self.error}"
        return self.status

    @property
    def files_quarantined(self) -> int:
        return self.submission.files_quarantined if self.submission else 0

    @property
    def rows_quarantined(self) -> int:
        return self.validation.rows_quarantined if self.validation else 0

    @property
    def rows_loaded(self) -> int:
        return self.load.rows_loaded if self.load else 0

    @property
    def table_problem(self) -> bool:
        """A table could not be pseudonymised at the site, or was rejected whole at the hub."""
        sub = self.submission is not None and self.submission.table_error is not None
        return sub or bool(self.validation and self.validation.rejected_tables)

    def row(self) -> dict[str, Any]:
        """The site-night's counts; None for a step that did not run (nothing is shown for it)."""
        sub, val = self.submission, self.validation
        return {
            "site_id": self.site_id,
            "night": "-" if self.night == self.failed_step else self.night,  # failed before any night
            "status": self.status_text,
            "files_in": sub.files_in if sub else None,
            "deidentified": sub.deidentified if sub else None,
            "files_quarantined": sub.files_quarantined if sub else None,
            "duplicates": sub.duplicates if sub else None,
            "rows_in": val.rows_in if val else None,
            "rows_loaded": self.rows_loaded if self.load else None,
            "rows_quarantined": val.rows_quarantined if val else None,
            "rows_with_warnings": val.rows_warned if val else None,
            "tables_rejected": ", ".join(val.rejected_tables) if val else None,
        }


@dataclass(frozen=True)
class LateSite:
    """A declared site with nothing new tonight whose last night is older than its expected cadence."""

    site_id: str
    #: its last received night (None: nothing received yet)
    last_night: str | None
    days_since: int | None
    expected_every_days: float

    def row(self) -> dict[str, Any]:
        since = "nothing received yet" if self.days_since is None else f"{self.days_since} days"
        return {
            "site_id": self.site_id,
            "night": self.last_night or "never",
            "status": f"{LATE} ({since}; expected every {self.expected_every_days:g})",
            **dict.fromkeys(ROW_COUNTS),
        }


#: the count columns of a summary row, in table order
ROW_COUNTS = (
    "files_in",
    "deidentified",
    "files_quarantined",
    "duplicates",
    "rows_in",
    "rows_loaded",
    "rows_quarantined",
    "rows_with_warnings",
    "tables_rejected",
)


@dataclass
class NightSummary:
    """The night: every site-night's outcome, the sites with nothing new, and the consortium outputs."""

    outcomes: list[SiteNightOutcome] = field(default_factory=list)
    #: declared sites with no new or re-delivered night in the landing folder
    idle_sites: list[str] = field(default_factory=list)
    #: idle sites whose last night is older than their expected cadence
    late: list[LateSite] = field(default_factory=list)
    #: site folders in the landing folder that the registry does not declare (not processed)
    unknown_sites: list[str] = field(default_factory=list)
    warehouse: Path | None = None
    warehouse_sha256: str | None = None
    report: Path | None = None
    #: cross-site distribution warnings (validated/distribution_warnings.csv): shown, never quarantined
    distribution_warnings: int = 0
    #: site -> PACS instances its fetch refused as unusable tonight (recorded in the site's fetch state;
    #: the watermark moved past them): input refused, so the night exits 1
    fetch_refused: dict[str, int] = field(default_factory=dict)
    #: the step of the consortium part (load order, analysis, report) that failed, with its error type
    hub_error: str | None = None
    hub_detail: str | None = None

    @property
    def failed(self) -> list[SiteNightOutcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def exit_code(self) -> int:
        """3: a site-night or the consortium step failed (the others went on); 1: done, with something
        quarantined or refused; 0: everything went through clean. A late site does not change it
        (``cohortpool status`` exits 1 for that)."""
        if self.hub_error or self.failed:
            return EXIT_FAILED
        if any(o.status == QUARANTINED for o in self.outcomes) or any(self.fetch_refused.values()):
            return EXIT_ISSUES
        return EXIT_OK

    @property
    def data_docs(self) -> list[Path]:
        return [o.validation.data_docs for o in self.outcomes if o.validation is not None]

    def rows(self) -> list[dict[str, Any]]:
        """One row per site-night, then one per late site: counts only (the Prefect table artifact)."""
        done = [o.row() for o in sorted(self.outcomes, key=lambda o: (o.site_id, o.night))]
        return done + [late.row() for late in sorted(self.late, key=lambda s: s.site_id)]

    def headline(self) -> str:
        """``3 site-night(s): 1 ok, 2 quarantined, 0 failed; 1 site late; exit code 1``."""
        by = {s: sum(1 for o in self.outcomes if o.status == s) for s in (OK, QUARANTINED, FAILED)}
        late = f"; {len(self.late)} site(s) late" if self.late else ""
        refused = sum(self.fetch_refused.values())
        refused_part = f"; {refused} PACS instance(s) refused at fetch" if refused else ""
        return (
            f"{len(self.outcomes)} site-night(s): {by[OK]} ok, {by[QUARANTINED]} quarantined, "
            f"{by[FAILED]} failed{late}{refused_part}; exit code {self.exit_code}"
        )

    def state_message(self) -> str:
        """One line for the flow run's final state (no error messages: they may quote paths)."""
        failed = [f"{o.label} at {o.failed_step} ({o.error})" for o in self.failed]
        if self.hub_error:
            failed.append(f"consortium step ({self.hub_error})")
        if failed:
            return f"failed: {', '.join(failed)}; {self.headline()}"
        return self.headline()

    def markdown(self) -> str:
        """The night's summary for the Prefect UI: per site what happened, and where the outputs are."""
        lines = [
            "# cohortpool nightly run",
            "",
            f"{self.headline()}.",
            "",
        ]
        rows = self.rows()
        if rows:
            lines += [
                "| site | night | status | files in | de-identified | files quarantined | duplicates "
                "| rows in | rows loaded | rows quarantined | batch |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            batches = {(o.site_id, o.night): o.validation.batch_id for o in self.outcomes if o.validation}
            for row in rows:
                cells = [_cell(row[k]) for k in ("site_id", "night", "status", *ROW_COUNTS[:7])]
                cells.append(batches.get((row["site_id"], row["night"]), ""))
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        for o in self.outcomes:
            if o.failed_step is not None:
                lines.append(f"{o.label}: failed at {o.failed_step} ({o.error}).")
            if o.load is not None and o.load.late_rows:
                lines.append(
                    f"{o.site_id} {o.night}: {o.load.late_rows} rows older than a newer night's, kept as "
                    "history."
                )
        idle = [s for s in self.idle_sites if s not in {late.site_id for late in self.late}]
        if idle:
            lines.append(f"Nothing new from: {', '.join(idle)}.")
        if self.unknown_sites:
            lines.append(
                f"Not in the registry, left alone: {', '.join(self.unknown_sites)} "
                "(declare them under `sites` in cohortpool.yaml to process them)."
            )
        if self.hub_error:
            lines.append(f"Consortium step failed: {self.hub_error}.")
        if self.report is not None:
            lines.append(f"Report: `{self.report / 'report.html'}`.")
        if self.warehouse is not None:
            lines.append(f"Warehouse: `{self.warehouse}` (content sha256 `{self.warehouse_sha256}`).")
        return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


class NightFailed(Exception):
    """A night in which a site-night or the consortium step failed, carrying the night's summary.

    The flow ends in a Failed state whose data is this exception: Prefect resolves a Failed state's data
    into an exception (any other object gives "Unexpected result for failed state"), and the caller still
    gets the summary back (:func:`summary_of`).
    """

    def __init__(self, summary: NightSummary) -> None:
        super().__init__(summary.state_message())
        self.summary = summary

    def __reduce__(self) -> tuple[type[NightFailed], tuple[NightSummary]]:
        return (NightFailed, (self.summary,))


def summary_of(result: object) -> NightSummary | None:
    """The night's summary from what a nightly or hub flow run returned (its result or its failure)."""
    if isinstance(result, NightSummary):
        return result
    if isinstance(result, NightFailed):
        return result.summary
    return None
