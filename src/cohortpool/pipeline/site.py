"""The site half: a landing folder's new nights, and one site-night's drop -> its submission.

:func:`package_site_night` is the hop from a drop to a submission: the de-identification, table,
manifest and release-risk stage calls in one place. ``cohortpool deid`` and the flows' build-submission
task both run it, so a submission is the same bytes whichever way a site makes it.

``submission.json`` vouches for the folder (the hub takes any folder that has one), so it is removed
before anything in the folder is rewritten and written last: a run that stops part-way (a full disk, a
kill) leaves no manifest beside a mixture of old and new outputs. A write that fails for the machine's
sake (disk full, quota, I/O error, read-only) is raised as :class:`OutputWriteError`, naming the folders
and their free space.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cohortpool import __version__
from cohortpool.config import MissingSecretError, UndeclaredSiteError
from cohortpool.contract import MACHINE_ERRNOS
from cohortpool.contract.files import sha256_file
from cohortpool.contract.keys import key_fingerprint
from cohortpool.contract.tables import DROP_TABLE_FILES
from cohortpool.deid import (
    DEIDENTIFIED,
    QUARANTINED,
    Pseudonymiser,
    VaultError,
    check_vault,
    check_vault_key,
    deidentify_tree,
    load_profile,
)
from cohortpool.deid.run import DeidResult
from cohortpool.features import (
    BLOCKED_FILE,
    ReleaseBlockedError,
    TableResult,
    WithdrawalError,
    generalisations,
    instance_record,
    k_anonymity,
    package_submission,
    pseudonymise_tables,
    withhold,
    write_manifest,
)
from cohortpool.features.kanon import (
    QUASI_IDENTIFIERS,
    SUBMISSION_FILE,
    KAnonymity,
    imaging_quasi_identifiers,
)
from cohortpool.features.vocabulary import load_vocabulary
from cohortpool.features.withdrawal import remove_withdrawn_dicom
from cohortpool.ingest import (
    FetchResult,
    LandingScan,
    SiteFolderError,
    SiteNight,
    SourceError,
    fetch_new_studies,
    mark_processed,
    scan_sites,
)
from cohortpool.pipeline.records import SubmissionSummary
from cohortpool.pipeline.runconfig import KeyMismatchError, RunConfig, run_secret

__all__ = [
    "EXPECTED_FAILURES",
    "FetchResult",
    "LandingScan",
    "PackagedNight",
    "SiteFolderError",
    "SiteNight",
    "SourceError",
    "build_submission",
    "fetch_new_studies",
    "mark_processed",
    "package_site_night",
    "scan_sites",
]

log = logging.getLogger(__name__)

#: why a drop without feature tables still makes a submission (DICOM only)
NO_TABLES = "no clinical.csv, reads.csv or withdrawn.csv in the drop; the submission holds DICOM only"
#: the header attribute each quasi-identifier of a DICOM release is read from (PatientAge, PatientSex,
#: StudyDate); a quasi-identifier counts only when the profile keeps (K) or cleans (C: dates shifted) it
_HEADER_ATTRIBUTES = {"age_years": 0x00101010, "sex": 0x00100040, "first_exam_date": 0x00080020}


class OutputWriteError(OSError):
    """The submission or the vault could not be written (disk full or failing): nothing was released."""


#: a site-night's failures that are its data's, its machine's or its configuration's doing, not a bug:
#: each says what happened in one line (the flows report them without a traceback)
EXPECTED_FAILURES: tuple[type[Exception], ...] = (
    ReleaseBlockedError,
    MissingSecretError,
    UndeclaredSiteError,
    VaultError,
    OutputWriteError,
    SourceError,
    SiteFolderError,
)


def free_space(path: Path) -> str:
    """``12.3 MiB free`` on the file system holding ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return f"{shutil.disk_usage(probe).free / 2**20:.1f} MiB free"
    except OSError:
        return "free space unknown"


def _unmark(out_dir: Path) -> None:
    """Remove the folder's manifests: it is not a submission until this run writes one."""
    for name in (SUBMISSION_FILE, BLOCKED_FILE):
        with contextlib.suppress(OSError):  # a read-only or vanished folder: the caller reports why
            (out_dir / name).unlink(missing_ok=True)


def _released_in_headers(options: tuple[str, ...]) -> tuple[str, ...]:
    """The quasi-identifiers the de-identified headers carry under the profile ``options``."""
    profile = load_profile(options)
    kept = set()
    for name, tag in _HEADER_ATTRIBUTES.items():
        rule = profile.rule(tag)
        if rule is not None and rule.action in ("K", "C"):
            kept.add(name)
    return tuple(q for q in QUASI_IDENTIFIERS if q == "site_id" or q in kept)


@dataclass(frozen=True)
class PackagedNight:
    """What packaging one site-night produced."""

    deid: DeidResult
    #: input files, de-identified, quarantined, duplicates, series, table rows
    counts: dict[str, int]
    privacy: KAnonymity
    #: submission.json (absent content-wise when the release was withheld: see ``privacy.blocked``)
    manifest: Path
    #: why the feature tables could not be pseudonymised; NO_TABLES when the drop has none
    table_error: str | None
    #: what the tables' pseudonymisation released, replaced and withheld (None: no tables in the drop)
    tables: TableResult | None = None
    #: why the whole submission is withheld besides k-anonymity (an unreadable withdrawn.csv)
    withheld: str | None = None

    @property
    def has_tables(self) -> bool:
        return self.table_error != NO_TABLES

    @property
    def blocked_reason(self) -> str | None:
        """Why nothing of the night is released (None: released)."""
        if self.withheld is not None:
            return self.withheld
        return self.privacy.reason() if self.privacy.blocked else None


def k_date_precision(config: RunConfig, options: tuple[str, ...]) -> str:
    """The first-exam date precision k counts at (``Settings.k_anonymity_date_precision``, "auto" resolved
    from what the profile releases: real dates by the day, shifted ones as coarsely as the shift blurs them).
    """
    chosen = config.k_anonymity_date_precision
    if chosen != "auto":
        return chosen
    shift = config.deid.max_date_shift_days
    if "retain_long_full_dates" in options:
        return "day"  # real dates in the headers
    # the tables' dates are always shifted, the headers' are shifted or removed
    return "year" if shift >= 365 else "month" if shift >= 28 else "day"


def package_site_night(
    drop: Path,
    out_dir: Path,
    vault_dir: Path,
    site_id: str,
    night: str,
    config: RunConfig,
    secret: bytes,
    *,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> PackagedNight:
    """De-identify ``drop``, pseudonymise its tables with the same keys, write the manifest, check the
    release risk and package ``out_dir`` as a submission (withheld when below the minimum k).

    Patients of the drop's ``withdrawn.csv`` leave only as pseudonyms in the submission's
    ``withdrawn.csv``: their table rows are not released and their de-identified DICOM is removed before
    packaging (:mod:`cohortpool.features.withdrawal`).

    Raises, before anything in ``out_dir`` or the vault is touched (:func:`refuse_before_writing`): an
    undeclared site, a key the run or the site's registry entry does not expect, an unknown profile
    option, a misplaced vault, :class:`cohortpool.features.VocabularyError` for an unusable synonyms
    file. Then :class:`OutputWriteError` for a full or failing disk (no ``submission.json`` is left);
    table problems are returned, not raised.
    """
    fingerprint = refuse_before_writing(drop, out_dir, vault_dir, site_id, config, secret)
    with _unmarked_on_disk_errors(out_dir, vault_dir, f"{site_id} {night}"):
        result = deidentify_tree(
            drop,
            out_dir,
            vault_dir,
            site_id,
            secret,
            night,
            options=config.deid,
            workers=workers,
            record_hook=instance_record,
            progress=progress,
        )
        for name in DROP_TABLE_FILES:  # a table an earlier run of this night released, now gone
            if not (drop / name).exists():
                (out_dir / name).unlink(missing_ok=True)
        table_error: str | None = NO_TABLES
        tables: TableResult | None = None
        withheld: str | None = None
        if any((drop / name).exists() for name in DROP_TABLE_FILES):
            keys = Pseudonymiser(secret, site_id, config.deid.max_date_shift_days)
            try:
                tables = pseudonymise_tables(
                    drop, out_dir, keys, options=config.tables, vault_dir=vault_dir, night=night
                )
                table_error = tables.error
            except WithdrawalError as exc:
                table_error = withheld = str(exc)
        withdrawn = tables.withdrawn if tables is not None else frozenset()
        held_back = set(remove_withdrawn_dicom(out_dir, vault_dir, night, result.outputs, withdrawn))
        records = [r for r in result.records if r.get("patient_id") not in withdrawn]
        hashes = {path: digest for path, digest in result.hashes.items() if path not in held_back}
        series = write_manifest(records, out_dir / "imaging_manifest.csv", site_id)
        counts = {**result.counts, "series": series, **(tables.counts if tables is not None else {})}
        if withdrawn:
            counts["withdrawn_files"] = len(held_back)
        profile = {
            "edition": result.edition,
            "options": list(result.options),
            "allow_burned_in": result.allow_burned_in,
        }
        in_headers = _released_in_headers(result.options)
        names = (*QUASI_IDENTIFIERS, *config.tables.extra_quasi_identifiers)
        released_files = counts.get(DEIDENTIFIED, 0) - len(held_back)
        privacy = k_anonymity(
            out_dir / "clinical.csv",
            config.min_k_anonymity,
            imaging=imaging_quasi_identifiers(records, site_id, in_headers, names),
            imaging_released=in_headers,
            releases_data=bool(released_files or counts.get("clinical_rows") or counts.get("reads_rows")),
            date_precision=k_date_precision(config, result.options),
            quasi_identifiers=names,
            generalisations=generalisations(config.tables),
        )
        manifest = package_submission(
            out_dir,
            site_id,
            night,
            profile,
            counts,
            __version__,
            hashes,
            privacy=privacy.as_dict(),
            key_fingerprint=fingerprint,
            tables=tables.submission_facts() if tables is not None else None,
            secret=secret,
        )
        if privacy.blocked or withheld is not None:
            withhold(out_dir)
        return PackagedNight(result, counts, privacy, manifest, table_error, tables, withheld)


def refuse_before_writing(
    drop: Path, out_dir: Path, vault_dir: Path, site_id: str, config: RunConfig, secret: bytes
) -> str:
    """Every refusal of a site-night, checked before the output's manifest is removed, so a refused
    command leaves an earlier submission exactly as it was; returns the key's fingerprint.

    Raises
    ------
    cohortpool.config.UndeclaredSiteError
        No registry entry declares ``site_id``.
    KeyMismatchError
        The secret is not the run's, or (:class:`SiteKeyError`) not the one the site's entry pins.
    ValueError
        An unknown de-identification profile option or (:class:`cohortpool.features.VocabularyError`)
        synonyms file; :class:`cohortpool.deid.VaultError` too: the vault
        inside the output or the drop, or (:class:`cohortpool.deid.KeyMismatchError`) made with another key.
    """
    fingerprint = key_fingerprint(secret)
    if config.key_fingerprint is not None and fingerprint != config.key_fingerprint:
        raise KeyMismatchError(
            f"the secret has fingerprint {fingerprint}, the run was started with {config.key_fingerprint}"
        )
    config.site(site_id).check_key(fingerprint)
    load_profile(tuple(config.deid.options))
    load_vocabulary(config.tables)  # an unusable synonyms file is a configuration error
    check_vault(vault_dir, out_dir, drop)
    check_vault_key(vault_dir, secret)  # a vault belongs to the key it was first used with
    return fingerprint


@contextlib.contextmanager
def _unmarked_on_disk_errors(out_dir: Path, vault_dir: Path, what: str) -> Iterator[None]:
    """No manifest vouches for ``out_dir`` while it is rewritten, nor after a failure; a full or failing
    disk becomes :class:`OutputWriteError` naming both folders and their free space."""
    _unmark(out_dir)
    try:
        yield
    except OSError as exc:
        _unmark(out_dir)  # submission.json may be half-written
        if exc.errno not in MACHINE_ERRNOS or isinstance(exc, OutputWriteError):
            raise
        raise OutputWriteError(
            exc.errno,
            f"{os.strerror(exc.errno)}: {what} could not be written to the submission folder "
            f"{out_dir} ({free_space(out_dir)}) or the vault {vault_dir} ({free_space(vault_dir)}); "
            "no submission.json was written and no file was quarantined because of it: free space (or "
            "repair the disk) and run again",
        ) from exc


def build_submission(
    drop: Path,
    submission_dir: Path,
    vault_dir: Path,
    site_id: str,
    night: str,
    config: RunConfig,
    *,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> SubmissionSummary:
    """Site night -> submission, with this process's key (checked against the run's fingerprint).

    Raises :class:`cohortpool.features.ReleaseBlockedError` when the release is withheld at the site
    (the hub never sees it; the night fails with the reason), besides what :func:`package_site_night`
    raises.
    """
    packaged = package_site_night(
        drop,
        submission_dir,
        vault_dir,
        site_id,
        night,
        config,
        run_secret(config),
        workers=workers,
        progress=progress,
    )
    counts, privacy = packaged.counts, packaged.privacy
    log.info(
        "%s %s: %d files, %d de-identified, %d quarantined; k-anonymity %d (minimum %d); %d table cells "
        "to fix at the site (vault tables/%s.csv)",
        site_id,
        night,
        counts["input_files"],
        counts["deidentified"],
        packaged.deid.count(QUARANTINED),
        privacy.k,
        privacy.min_k,
        packaged.tables.report.to_fix() if packaged.tables is not None else 0,
        night,
    )
    if packaged.blocked_reason is not None:
        raise ReleaseBlockedError(f"{site_id} {night}: {packaged.blocked_reason}")
    return SubmissionSummary(
        site_id,
        night,
        submission_dir,
        sha256_file(packaged.manifest),
        counts,
        packaged.deid.reasons,
        packaged.table_error,
    )
