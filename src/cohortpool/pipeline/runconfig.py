"""One run's configuration: read once from :class:`cohortpool.config.Settings`, then passed down.

A run (the nightly flow, a site-edge or hub deployment run, ``cohortpool deid``) builds a
:class:`RunConfig` at its start and hands it to every step as a parameter. On a Dask cluster each
worker would otherwise read its own environment and YAML file, and two workers could process one night
with different settings without anyone noticing.

The secret is never part of it: Prefect stores flow parameters in its database. What travels is the
key's fingerprint (:func:`cohortpool.contract.keys.key_fingerprint`); the step that needs the key reads
it where it runs (:func:`run_secret`) and refuses to work when its key is not the run's.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from cohortpool import __version__
from cohortpool.config import (
    DeidConfig,
    MissingSecretError,
    Settings,
    SiteConfig,
    TablesConfig,
    UndeclaredSiteError,
    load_settings,
    read_secret,
)
from cohortpool.contract import resources
from cohortpool.contract.keys import key_fingerprint


class KeyMismatchError(MissingSecretError):
    """This process's consortium secret is not the one the run was started with."""


class SiteKeyError(KeyMismatchError):
    """The secret is not the one the site's registry entry pins (``key_fingerprint``)."""


class SiteRun(BaseModel):
    """What a run needs to know of one declared site (its registry entry)."""

    model_config = ConfigDict(frozen=True)

    site_id: str
    #: an Orthanc/DICOMweb root to fetch new studies from before the scan (None: drop folder only)
    dicomweb_url: str | None = None
    #: the key fingerprint the registry pins for this site (None: not pinned)
    key_fingerprint: str | None = None
    #: the site's IANA time zone (None: the machine's)
    timezone: str | None = None
    #: the site is late after this many days without a night (None: never late)
    expected_every_days: float | None = 1.0

    @classmethod
    def from_site(cls, site: SiteConfig) -> SiteRun:
        return cls(
            site_id=site.site_id,
            dicomweb_url=site.dicomweb_url,
            key_fingerprint=site.key_fingerprint,
            timezone=site.timezone,
            expected_every_days=site.expected_every_days,
        )

    def check_key(self, fingerprint: str) -> None:
        """Refuse a key whose fingerprint is not the one pinned for this site (:class:`SiteKeyError`)."""
        if self.key_fingerprint is not None and fingerprint != self.key_fingerprint:
            raise SiteKeyError(
                f"site {self.site_id} pins key fingerprint {self.key_fingerprint} in its registry entry, "
                f"but this secret's fingerprint is {fingerprint}: use the consortium's key (or correct "
                "the pinned fingerprint if the consortium changed its key)"
            )


class RunConfig(BaseModel):
    """Everything a run's steps may depend on, frozen and hashable (it keys the task cache)."""

    model_config = ConfigDict(frozen=True)

    version: str = __version__
    sites: tuple[SiteRun, ...] = ()
    deid: DeidConfig = DeidConfig()
    tables: TablesConfig = TablesConfig()
    min_k_anonymity: int = 0
    k_anonymity_date_precision: str = "auto"
    small_cell_threshold: int = 5
    fetch_budget_seconds: float = 7200.0
    workers: int = 1
    plan: Path = resources.plan_path()
    #: where the secret is read from when COHORTPOOL_SECRET is not set (a path, never the key)
    secret_file: Path | None = None
    #: the public DEMO-ONLY secret is accepted (``cohortpool demo`` only)
    demo: bool = False
    #: the fingerprint of the key this run was started with; None where no key is held (the hub)
    key_fingerprint: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, require_key: bool = False) -> RunConfig:
        """The run's configuration; its key fingerprint when a secret is configured (``require_key``:
        raise :class:`cohortpool.config.MissingSecretError` when none is)."""
        try:
            fingerprint: str | None = key_fingerprint(settings.secret_bytes())
        except MissingSecretError:
            if require_key:
                raise
            fingerprint = None
        return cls(
            sites=tuple(SiteRun.from_site(s) for s in settings.sites),
            deid=settings.deid,
            tables=settings.tables,
            min_k_anonymity=settings.min_k_anonymity,
            k_anonymity_date_precision=settings.k_anonymity_date_precision,
            small_cell_threshold=settings.small_cell_threshold,
            fetch_budget_seconds=settings.fetch_budget_minutes * 60,
            workers=settings.workers,
            secret_file=settings.secret_file,
            demo=settings.demo,
            key_fingerprint=fingerprint,
        )

    @property
    def site_ids(self) -> tuple[str, ...]:
        return tuple(s.site_id for s in self.sites)

    def site(self, site_id: str) -> SiteRun:
        """The declared site's entry, or :class:`cohortpool.config.UndeclaredSiteError`."""
        for site in self.sites:
            if site.site_id == site_id:
                return site
        raise UndeclaredSiteError(site_id, list(self.site_ids))

    def site_fingerprint(self) -> str:
        """What, besides a drop's content, decides its submission: code version, key, de-identification
        and release options. A change to any of them re-does the night's packaging."""
        parts = (
            self.version,
            self.key_fingerprint,
            self.deid.model_dump_json(),
            self.tables.model_dump_json(),
            self.min_k_anonymity,
            self.k_anonymity_date_precision,
        )
        return "|".join(str(p) for p in parts)

    def hub_fingerprint(self) -> str:
        """What, besides a submission's content, decides its validated batch: the code version (the
        suites ship with it; the hub holds no key)."""
        return f"cohortpool {self.version} validate"


def run_secret(config: RunConfig) -> bytes:
    """The consortium secret of this process, checked against the run's key fingerprint.

    Raises
    ------
    MissingSecretError
        No secret here, or a weak one.
    KeyMismatchError
        This process holds another key than the run was started with: it would write a second,
        unlinkable set of pseudonyms for the same patients.
    """
    secret = read_secret(config.secret_file, demo=config.demo)
    mine = key_fingerprint(secret)
    if config.key_fingerprint is not None and mine != config.key_fingerprint:
        raise KeyMismatchError(
            f"this process's consortium secret has fingerprint {mine}, the run was started with "
            f"{config.key_fingerprint}: give every worker the same COHORTPOOL_SECRET (or secret file)"
        )
    return secret


def load_run_config(*, require_key: bool = False) -> RunConfig:
    """Read the settings (environment and YAML) once and freeze them into the run's configuration: the
    entry point of a run that no command line started (a deployment's flow run)."""
    return RunConfig.from_settings(load_settings(), require_key=require_key)
