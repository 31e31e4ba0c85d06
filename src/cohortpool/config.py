"""One typed settings object for the whole pipeline.

Settings come from, in order of precedence: constructor arguments, environment variables
(``COHORTPOOL_*``), an optional YAML file (``cohortpool.yaml`` in the working directory, or the
file named by ``COHORTPOOL_CONFIG``), then the defaults below. This is the only module that
reads environment variables. A run reads them once: the composition layer turns them into a
``RunConfig`` (``cohortpool.pipeline.runconfig``) that travels with the run; only the secret is read
again where it is used, from its source, since it never travels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from cohortpool.contract.identifiers import check_site_id

#: Environment defaults that keep Prefect and Great Expectations from phoning home.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
}


def disable_telemetry() -> None:
    """Turn telemetry off for this process and its children (hospital networks are closed)."""
    for key, value in TELEMETRY_OFF.items():
        os.environ[key] = value


def config_file() -> Path:
    """The YAML file settings are read from (it need not exist)."""
    return Path(os.environ.get("COHORTPOOL_CONFIG", "cohortpool.yaml"))


class SiteConfig(BaseModel):
    """A hospital of the consortium.

    Its drops are read from ``<landing>/<site_id>/`` (a symlink there to the hospital's export share is
    followed). Unknown keys are refused, so a misspelt option is an error rather than silently ignored.
    """

    model_config = ConfigDict(extra="forbid")

    site_id: str
    name: str = ""
    #: optional Orthanc/DICOMweb source, fetched into ``<landing>/<site_id>/`` before the scan
    dicomweb_url: str | None = None

    @field_validator("site_id")
    @classmethod
    def _valid_site_id(cls, value: str) -> str:
        # site ids end up in paths, SQL parameters and pseudonym keys: keep them to a safe alphabet
        return check_site_id(value)


class DeidConfig(BaseModel):
    """De-identification options (DICOM PS3.15 Annex E profile options).

    Frozen and hashable: it travels inside a run's configuration and keys the task cache.
    """

    model_config = ConfigDict(frozen=True)

    options: tuple[str, ...] = (
        "retain_long_modified_dates",
        "retain_patient_characteristics",
        "clean_descriptors",
    )
    allow_burned_in: bool = False
    #: maximum date shift in days (each patient gets a keyed offset in [-max, -1])
    max_date_shift_days: int = 365


#: the clinical columns a consortium may add to the quasi-identifiers k is computed over
ExtraQuasiIdentifier = Literal["diagnosis", "pathology_confirmed", "primary_tumour"]


class TablesConfig(BaseModel):
    """How the site tables are released (docs/data_contract.md section 2): the controlled vocabulary of
    ``primary_tumour`` and the generalisations that raise k-anonymity.

    Frozen and hashable: it travels inside a run's configuration and keys the task cache.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the terms ``primary_tumour`` may carry (the hub's suite lists the same set)
    primary_tumour_vocabulary: tuple[str, ...] = (
        "lung",
        "breast",
        "prostate",
        "kidney",
        "thyroid",
        "liver",
        "other",
    )
    #: the term any value outside the vocabulary becomes (one of the vocabulary's terms)
    primary_tumour_other: str = "other"
    #: a reviewed CSV ``synonym,term`` replacing the shipped one (features/data/primary_tumour_synonyms.csv)
    primary_tumour_synonyms: Path | None = None
    #: released ages in bands of this many years, each band by its lowest age (1 = exact years)
    age_band_years: int = Field(default=1, ge=1, le=50)
    #: ages at or above this are released as this age (e.g. 90: "90 or older"); None = no top code
    age_top_code: int | None = Field(default=None, ge=18, le=130)
    #: the released first-exam date (already shifted) cut to the day, the month (YYYY-MM-01) or the year
    first_exam_date_precision: Literal["day", "month", "year"] = "day"
    #: a vocabulary term held by fewer patients than this in a submission is released as the "other"
    #: term (0 = never)
    merge_rare_categories_below: int = Field(default=0, ge=0)
    #: clinical columns k-anonymity counts besides age_years, sex, site_id and first_exam_date
    extra_quasi_identifiers: tuple[ExtraQuasiIdentifier, ...] = ()

    @field_validator("primary_tumour_other")
    @classmethod
    def _other_in_vocabulary(cls, value: str, info: ValidationInfo) -> str:
        terms = info.data.get("primary_tumour_vocabulary", ())
        if value not in terms:
            raise ValueError(f"primary_tumour_other {value!r} must be one of primary_tumour_vocabulary")
        return value


class Settings(BaseSettings):
    """Everything cohortpool can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="COHORTPOOL_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    #: the consortium secret that keys pseudonyms, UIDs and date shifts; never has a default
    secret: SecretStr | None = None
    secret_file: Path | None = None
    sites: list[SiteConfig] = Field(
        default_factory=lambda: [SiteConfig(site_id=f"site{i:02d}") for i in (1, 2, 3)]
    )
    data_dir: Path = Path("data")
    warehouse: Path = Path("data/warehouse.duckdb")
    vault_dir: Path = Path("vault")
    deid: DeidConfig = Field(default_factory=DeidConfig)
    tables: TablesConfig = Field(default_factory=TablesConfig)
    #: counts from 1 to this minus one are shown as "<threshold" in outputs that leave the hub
    small_cell_threshold: int = 5
    #: minimum k-anonymity of a submission's quasi-identifiers; 0 = off
    min_k_anonymity: int = 0
    #: how finely the first-exam date counts in k: "auto" = the day when real dates are released
    #: (retain_long_full_dates), else as coarse as the secret shift blurs it (a year for shifts up to
    #: a year or more, a month for shifts of four weeks or more, else the day)
    k_anonymity_date_precision: Literal["auto", "day", "month", "year"] = "auto"
    schedule_cron: str = "0 2 * * *"
    #: how long the nightly run may spend fetching from one site's PACS; what is left waits for the next run
    fetch_budget_minutes: float = Field(default=120.0, gt=0)
    #: set only by `cohortpool demo`: accepts the public DEMO-ONLY secret (synthetic data only)
    demo: bool = False
    dask_address: str | None = None
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=config_file()),
        )

    def site(self, site_id: str) -> SiteConfig:
        """The configured site, or a clear error naming the known ones."""
        for site in self.sites:
            if site.site_id == site_id:
                return site
        known = ", ".join(s.site_id for s in self.sites)
        raise KeyError(f"unknown site {site_id!r}; configured sites: {known} (edit {config_file()})")

    def secret_bytes(self) -> bytes:
        """The consortium secret, from COHORTPOOL_SECRET or the secret file; raises if neither is set
        or if it is weak (:func:`check_secret_strength`)."""
        given = self.secret.get_secret_value() if self.secret is not None else None
        return _secret(given, self.secret_file, self.demo)


def read_secret(secret_file: Path | None, *, demo: bool = False) -> bytes:
    """The consortium secret where the work runs: ``COHORTPOOL_SECRET``, else ``secret_file``.

    The secret never travels with a run (a flow's parameters are stored in Prefect's database): each
    process that needs the key reads it from its own environment or file with this.
    """
    return _secret(os.environ.get("COHORTPOOL_SECRET"), secret_file, demo)


def _secret(given: str | None, secret_file: Path | None, demo: bool) -> bytes:
    if given:
        return check_secret_strength(given, demo).encode("utf-8")
    if secret_file is not None:
        text = secret_file.read_text(encoding="utf-8").strip()
        if text:
            return check_secret_strength(text, demo).encode("utf-8")
    raise MissingSecretError(
        "no consortium secret: set COHORTPOOL_SECRET or pass --secret-file FILE "
        "(ask the consortium's key custodian; it is never stored by cohortpool)"
    )


class MissingSecretError(RuntimeError):
    """No consortium secret was configured."""


class WeakSecretError(MissingSecretError):
    """The configured secret is too easy to guess (a guessed key re-identifies every pseudonym)."""


#: the shortest secret accepted; the key custodian should use ``openssl rand -hex 32`` (64 characters)
MIN_SECRET_CHARS = 16
_PLACEHOLDERS = ("secret", "password", "changeme", "cohortpool", "test", "example", "default")


def check_secret_strength(secret: str, demo: bool = False) -> str:
    """The secret, or :class:`WeakSecretError` saying why it is refused (never quoting it).

    Pseudonyms are keyed HMACs of MRNs, a small and structured space: whoever guesses the key can
    re-identify every patient by trying MRNs. A short, repetitive or placeholder secret is guessable;
    the public DEMO-ONLY secret is refused outside ``cohortpool demo``.
    """
    fix = "generate one with `openssl rand -hex 32` and give it to every site (COHORTPOOL_SECRET)"
    if "DEMO-ONLY" in secret:
        if demo:
            return secret
        raise WeakSecretError(f"the DEMO-ONLY secret is public and only for `cohortpool demo`; {fix}")
    if len(secret) < MIN_SECRET_CHARS:
        raise WeakSecretError(
            f"the consortium secret is {len(secret)} characters; at least {MIN_SECRET_CHARS} are "
            f"required; {fix}"
        )
    lowered = secret.lower()
    if len(set(secret)) < 6 or any(lowered.strip("-_ 0123456789") == word for word in _PLACEHOLDERS):
        raise WeakSecretError(f"the consortium secret is a placeholder or too repetitive; {fix}")
    return secret


class ConfigFileError(ValueError):
    """The YAML file cannot be read (a ValueError, like pydantic's, so every CLI exits 2 on it)."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and YAML file, with explicit overrides on top.

    Raises
    ------
    ConfigFileError
        The configuration file (or the folder it is looked for in) cannot be read.
    """
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except OSError as exc:
        raise ConfigFileError(
            f"cannot read the configuration file {config_file()} ({exc.strerror or type(exc).__name__}): "
            "give this user read access or point COHORTPOOL_CONFIG at a readable file"
        ) from None
