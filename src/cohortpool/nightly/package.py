"""One site-night's drop -> its submission: the four site-edge stage calls in one place.

``cohortpool deid`` and the nightly flow's build-submission task both run this, so a submission is the
same bytes whichever way a site makes it (the deid and features packages may not import each other,
so their composition lives in this layer above them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cohortpool import __version__
from cohortpool.config import Settings
from cohortpool.deid import Pseudonymiser, deidentify_tree
from cohortpool.deid.run import DeidResult
from cohortpool.features import (
    BLOCKED_FILE,
    TableError,
    instance_record,
    k_anonymity,
    package_submission,
    pseudonymise_tables,
    withhold,
    write_manifest,
)
from cohortpool.features.kanon import KAnonymity

#: why a drop without feature tables still makes a submission (DICOM only)
NO_TABLES = "no clinical.csv or reads.csv in the drop; the submission holds DICOM only"


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

    @property
    def has_tables(self) -> bool:
        return self.table_error != NO_TABLES


def package_site_night(
    drop: Path,
    out_dir: Path,
    vault_dir: Path,
    site_id: str,
    night: str,
    settings: Settings,
    secret: bytes,
    *,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
    after_deid: Callable[[], None] | None = None,
) -> PackagedNight:
    """De-identify ``drop``, pseudonymise its tables with the same keys, write the manifest, check the
    release risk and package ``out_dir`` as a submission (withheld when below the minimum k).

    Raises whatever :func:`cohortpool.deid.deidentify_tree` raises for the run as a whole (vault
    misplaced, unknown profile option, a full disk); table problems are returned, not raised.
    """
    result = deidentify_tree(
        drop,
        out_dir,
        vault_dir,
        site_id,
        secret,
        night,
        options=settings.deid,
        workers=workers,
        record_hook=instance_record,
        progress=progress,
    )
    if after_deid is not None:
        after_deid()
    table_error: str | None = NO_TABLES
    table_counts: dict[str, int] = {}
    if (drop / "clinical.csv").exists() or (drop / "reads.csv").exists():
        table_error = None
        try:
            keys = Pseudonymiser(secret, site_id, settings.deid.max_date_shift_days)
            table_counts = pseudonymise_tables(drop, out_dir, keys)
        except TableError as exc:
            table_error = str(exc)
    series = write_manifest(result.records, out_dir / "imaging_manifest.csv", site_id)
    counts = {**result.counts, "series": series, **table_counts}
    profile = {
        "edition": result.edition,
        "options": list(result.options),
        "allow_burned_in": result.allow_burned_in,
    }
    (out_dir / BLOCKED_FILE).unlink(missing_ok=True)  # a withheld earlier run of this night
    privacy = k_anonymity(out_dir / "clinical.csv", settings.min_k_anonymity)
    manifest = package_submission(
        out_dir, site_id, night, profile, counts, __version__, result.hashes, privacy=privacy.as_dict()
    )
    if privacy.blocked:
        withhold(out_dir)
    return PackagedNight(result, counts, privacy, manifest, table_error)
