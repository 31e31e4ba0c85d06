"""One typed settings object for the whole pipeline, and the checks that refuse a bad one.

Settings come from, in order of precedence: constructor arguments, environment variables
(``COHORTPOOL_*``), an optional YAML file (``cohortpool.yaml`` in the working directory, or the
file named by ``COHORTPOOL_CONFIG``), then the defaults below. This is the only module that
reads environment variables. A run reads them once: the composition layer turns them into a
``RunConfig`` (``cohortpool.pipeline.runconfig``) that travels with the run; only the secret is read
again where it is used, from its source, since it never travels.

A consortium's worst day is the silent one, so the file is read strictly: an unknown key at any level
(a misspelt ``small_cell_treshold`` would otherwise leave the default in force), a YAML syntax error or a
``secret:`` in the file each stop the command with one line naming the file, the line and what to do.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import itertools
import os
import re
import zoneinfo
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cohortpool.contract.identifiers import check_site_id
from cohortpool.contract.keys import FINGERPRINT_CHARS

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


_FINGERPRINT = re.compile(rf"^[0-9a-f]{{{FINGERPRINT_CHARS}}}$")


class SiteConfig(BaseModel):
    """A hospital of the consortium: the registry entry that lets cohortpool work for it.

    Its drops are read from ``<landing>/<site_id>/`` (a symlink there to the hospital's export share is
    followed). A site id that no entry declares is refused by every command that takes ``--site``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    site_id: str
    name: str = ""
    #: optional Orthanc/DICOMweb source, fetched into ``<landing>/<site_id>/`` before the scan
    dicomweb_url: str | None = None
    #: the consortium key's fingerprint this site must use (``cohortpool config`` prints it); a secret
    #: with another fingerprint is refused before anything is written
    key_fingerprint: str | None = None
    #: IANA time zone of the site (e.g. ``Europe/Paris``): "today" for an undated drop and for lateness;
    #: None is the machine's own
    timezone: str | None = None
    #: how often the site is expected to send a night; ``cohortpool status`` flags it late after that
    #: many days without one (null: never late)
    expected_every_days: float | None = Field(default=1.0, gt=0)
    #: when the site's ``site-edge`` deployment runs (``cohortpool deploy``): a cron expression read in the
    #: site's ``timezone`` (UTC when none), so "2 a.m. at the hospital" stays 2 a.m. across DST changes
    schedule: str = "0 2 * * *"
    #: where the site's ``site-edge`` run pushes its submissions: the hub's inbox, a folder or
    #: ``sftp://user@host[:port]/path`` (None: the submissions stay in the run's output folder)
    push_to: str | None = None

    @field_validator("site_id")
    @classmethod
    def _valid_site_id(cls, value: str) -> str:
        # site ids end up in paths, SQL parameters and pseudonym keys: keep them to a safe alphabet
        return check_site_id(value)

    @field_validator("key_fingerprint", mode="before")
    @classmethod
    def _quoted_fingerprint(cls, value: object) -> object:
        if isinstance(value, int | float):  # YAML reads 16 digits as a number, dropping leading zeros
            raise ValueError(
                "write the fingerprint in quotes: YAML reads a fingerprint of digits as a number"
            )
        return value

    @field_validator("key_fingerprint")
    @classmethod
    def _valid_fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not _FINGERPRINT.match(value):
            raise ValueError(
                f"must be the {FINGERPRINT_CHARS} lower-case hex characters `cohortpool config` prints "
                "as key_fingerprint"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            check_timezone(value)
        return value

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        return check_cron(value)


#: one cron field: ``*``, numbers, names (``mon``, ``jan``), ranges, lists and steps
_CRON_VALUE = r"(\*|([0-9]{1,2}|[a-z]{3})(-([0-9]{1,2}|[a-z]{3}))?)(/[0-9]{1,2})?"
_CRON_FIELD = re.compile(rf"^{_CRON_VALUE}(,{_CRON_VALUE})*$")


def check_cron(text: str) -> str:
    """``text`` if it is a five-field cron expression (minute hour day month weekday), else ValueError.

    The shape is checked here, where the file is read; Prefect checks the values again when
    ``cohortpool deploy`` registers the schedule.
    """
    fields = text.lower().split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(
            f"{text!r} is not a cron expression: five fields, minute hour day month weekday "
            "(e.g. '0 2 * * *')"
        )
    return " ".join(text.split())


def check_timezone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name``, or ValueError naming the nearest known one."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        near = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
        hint = f" (nearest: {near[0]})" if near else " (an IANA name such as Europe/Paris)"
        raise ValueError(f"unknown time zone {name!r}{hint}") from None


class DeidConfig(BaseModel):
    """De-identification options (DICOM PS3.15 Annex E profile options).

    Frozen and hashable: it travels inside a run's configuration and keys the task cache.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    options: tuple[str, ...] = (
        "retain_long_modified_dates",
        "retain_patient_characteristics",
        "clean_descriptors",
    )
    allow_burned_in: bool = False
    #: maximum date shift in days (each patient gets a keyed offset in [-max, -1])
    max_date_shift_days: int = 365


class ConfigFileError(ValueError):
    """The YAML file cannot be used: unreadable, not YAML, an unknown key or a secret in it (a ValueError,
    like pydantic's, so every CLI exits 2 on it). The message is one line naming the file."""


#: keys of the settings that a configuration file may not set, and why
_NOT_IN_A_FILE = {
    "secret": (
        "the consortium secret does not belong in a configuration file (config files get copied and "
        "committed): put it in a file only this user can read (`cohortpool keygen FILE`) and set "
        "`secret_file: FILE`, or set COHORTPOOL_SECRET"
    ),
    "demo": "`demo` is set only by `cohortpool demo`",
}


class _StrictYamlSource(PydanticBaseSettingsSource):
    """The YAML file, refused with one line when a key is unknown, the YAML is broken or it holds the
    secret (pydantic-settings' own YAML source ignores unknown keys and raises multi-line errors)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path
        self.data = read_config_file(path, settings_cls)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


def read_config_file(path: Path, model: type[BaseModel]) -> dict[str, Any]:
    """The settings in ``path`` (``{}`` when it does not exist), every key checked against ``model``.

    Raises
    ------
    ConfigFileError
        Unreadable, not YAML, not a mapping, an unknown key at any level, or a key no file may set.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigFileError(
            f"cannot read the configuration file {path} ({why or type(exc).__name__}): give this user read "
            "access or point COHORTPOOL_CONFIG at a readable file"
        ) from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigFileError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise ConfigFileError(f"{path}:1: the configuration must be a mapping of keys to values")
    for key, (line, _) in _keys(root).items():
        if key in _NOT_IN_A_FILE:
            raise ConfigFileError(f"{path}:{line}: `{key}:` refused: {_NOT_IN_A_FILE[key]}")
    _check_keys(root, model, path, "")
    return data


def _keys(node: yaml.MappingNode) -> dict[str, tuple[int, yaml.Node]]:
    return {str(k.value): (k.start_mark.line + 1, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _check_keys(node: yaml.Node, model: type[BaseModel], path: Path, where: str) -> None:
    """Every key of the mapping ``node`` must be a field of ``model``; nested models are checked too."""
    if not isinstance(node, yaml.MappingNode):
        return  # a wrong type is pydantic's to report
    valid = [name for name in model.model_fields if name not in _NOT_IN_A_FILE]
    for key, (line, value) in _keys(node).items():
        if key not in model.model_fields:
            nearest = difflib.get_close_matches(key, valid, n=1, cutoff=0.0)
            hint = f"; nearest valid key: {nearest[0]}" if nearest else ""
            raise ConfigFileError(f"{path}:{line}: unknown key {key!r}{where}{hint}")
        nested = _model_of(model.model_fields[key].annotation)
        if nested is None:
            continue
        many, inner = nested
        if many and isinstance(value, yaml.SequenceNode):
            for i, item in enumerate(value.value):
                _check_keys(item, inner, path, f" in {key}[{i}]{_label(item)}")
        elif not many:
            _check_keys(value, inner, path, f" in {key}")


def _label(item: yaml.Node) -> str:
    if isinstance(item, yaml.MappingNode):
        site = _keys(item).get("site_id")
        if site is not None and isinstance(site[1], yaml.ScalarNode):
            return f" ({site[1].value})"
    return ""


def _model_of(annotation: Any) -> tuple[bool, type[BaseModel]] | None:
    """``(is_a_list, model)`` when a field holds a settings model or a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return False, annotation
    if get_origin(annotation) in (list, tuple):
        for arg in get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return True, arg
    return None


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
        # unknown keys in the file are refused by _StrictYamlSource with the nearest valid key; other
        # COHORTPOOL_* environment variables (COHORTPOOL_CONFIG itself) are not settings
        extra="forbid",
    )

    #: the consortium secret that keys pseudonyms, UIDs and date shifts: COHORTPOOL_SECRET only (never
    #: the YAML file) and never a default
    secret: SecretStr | None = None
    secret_file: Path | None = None
    #: the site registry: only declared sites are processed, fetched, received or de-identified
    sites: list[SiteConfig] = Field(default_factory=list)
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
    #: the hub deployment's daily catch-up run (``cohortpool deploy``), in ``hub_timezone``: takes whatever
    #: the ``cohortpool.submission.verified`` events did not start (an event lost, a receive run by hand)
    hub_schedule: str = "0 6 * * *"
    #: IANA time zone of the hub's schedule (None: UTC)
    hub_timezone: str | None = None
    #: the hub's inbox, where sites push (``cohortpool deploy`` gives it to the hub deployment, whose runs
    #: receive from it first); None: the hub run takes only what ``cohortpool receive`` already admitted
    hub_inbox: Path | None = None
    #: how long the nightly run may spend fetching from one site's PACS; what is left waits for the next run
    fetch_budget_minutes: float = Field(default=120.0, gt=0)
    #: set only by `cohortpool demo`: accepts the public DEMO-ONLY secret (synthetic data only)
    demo: bool = False
    dask_address: str | None = None
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1)

    @field_validator("schedule_cron", "hub_schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("hub_timezone")
    @classmethod
    def _valid_hub_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            check_timezone(value)
        return value

    @field_validator("sites")
    @classmethod
    def _distinct_sites(cls, sites: list[SiteConfig]) -> list[SiteConfig]:
        seen: set[str] = set()
        for site in sites:
            if site.site_id in seen:
                raise ValueError(f"site {site.site_id!r} is declared twice")
            seen.add(site.site_id)
        return sites

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _StrictYamlSource(settings_cls, config_file()))

    def site(self, site_id: str) -> SiteConfig:
        """The declared site, or :class:`UndeclaredSiteError` naming the declared ones."""
        for site in self.sites:
            if site.site_id == site_id:
                return site
        raise UndeclaredSiteError(site_id, [s.site_id for s in self.sites])

    def secret_bytes(self) -> bytes:
        """The consortium secret, from COHORTPOOL_SECRET or the secret file; raises if neither is set
        or if it is weak (:func:`check_secret_strength`)."""
        given = self.secret.get_secret_value() if self.secret is not None else None
        return _secret(given, self.secret_file, self.demo)


class UndeclaredSiteError(KeyError):
    """A site id the registry (``sites`` in cohortpool.yaml) does not declare."""

    def __init__(self, site_id: str, declared: list[str]) -> None:
        super().__init__(site_id)
        self.site_id, self.declared = site_id, declared

    def __str__(self) -> str:
        known = ", ".join(self.declared) or "none"
        return (
            f"site {self.site_id!r} is not declared (declared sites: {known}): add it under `sites:` in "
            f"{config_file()} (a site id nobody declared would file a hospital's data under a new name)"
        )


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic validation error as one line: ``sites.0.timezone: unknown time zone ...; ...``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


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
        return read_secret_file(secret_file, demo=demo)
    raise MissingSecretError(
        "no consortium secret: set COHORTPOOL_SECRET or `secret_file: FILE` in cohortpool.yaml "
        "(ask the consortium's key custodian; it is never stored by cohortpool)"
    )


class MissingSecretError(RuntimeError):
    """No consortium secret was configured."""


class WeakSecretError(MissingSecretError):
    """The configured secret is too easy to guess (a guessed key re-identifies every pseudonym)."""


#: the key's least strength: 256 bits, the full strength of HMAC-SHA256 (an HMAC key gives at most as many
#: bits of security as it has: NIST SP 800-107 Rev. 1), what ``cohortpool keygen`` and
#: ``openssl rand -hex 32`` give
MIN_KEY_BYTES = 32
HOW_TO_MAKE_ONE = (
    "a consortium secret must carry at least 256 bits: 64 hex characters (or base64 of 32+ bytes), or "
    "32+ random bytes in a secret file; make one with `cohortpool keygen FILE` (or `openssl rand -hex 32`), "
    "set `secret_file: FILE` in cohortpool.yaml (or COHORTPOOL_SECRET) and give the same key to every site"
)
_PLACEHOLDERS = ("secret", "password", "changeme", "cohortpool", "example", "default", "test")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


def check_secret_strength(secret: str, demo: bool = False) -> str:
    """The secret, or :class:`WeakSecretError` saying why it is refused (never quoting it).

    Pseudonyms are keyed HMACs of MRNs, a small and structured space: whoever guesses the key can
    re-identify every patient by trying MRNs. The key must carry 256 bits, written as hex or base64 (the
    pseudonyms are keyed with the UTF-8 bytes of the text as written, so a key in use keeps its
    pseudonyms); a placeholder or a repeated pattern is refused, and the public DEMO-ONLY secret is
    accepted only by ``cohortpool demo``.
    """
    if "DEMO-ONLY" in secret:
        if demo:
            return secret
        raise WeakSecretError(
            f"the DEMO-ONLY secret is public and only for `cohortpool demo`; {HOW_TO_MAKE_ONE}"
        )
    lowered = secret.lower()
    if any(word in lowered for word in _PLACEHOLDERS):
        raise WeakSecretError(f"the consortium secret is a placeholder; {HOW_TO_MAKE_ONE}")
    key = _decoded(secret)
    if key is None:
        raise WeakSecretError(f"the consortium secret is neither hex nor base64; {HOW_TO_MAKE_ONE}")
    if len(key) < MIN_KEY_BYTES:
        raise WeakSecretError(
            f"the consortium secret carries {8 * len(key)} bits, fewer than {8 * MIN_KEY_BYTES}; "
            f"{HOW_TO_MAKE_ONE}"
        )
    if _patterned(key):
        raise WeakSecretError(f"the consortium secret is too repetitive; {HOW_TO_MAKE_ONE}")
    return secret


def read_secret_file(path: Path, *, demo: bool = False) -> bytes:
    """The key in ``path``: its text (hex or base64, surrounding whitespace ignored) as UTF-8 bytes, or,
    when the file is not text, its raw bytes (at least 32, not a pattern)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MissingSecretError(
            f"cannot read the secret file {path} ({exc.strerror or type(exc).__name__}): give this user "
            "read access to it, or set COHORTPOOL_SECRET"
        ) from None
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        text = None
    if text is not None and text.isprintable():
        if not text:
            raise MissingSecretError(f"the secret file {path} is empty; {HOW_TO_MAKE_ONE}")
        return check_secret_strength(text, demo).encode("utf-8")
    if len(raw) < MIN_KEY_BYTES or _patterned(raw):
        raise WeakSecretError(
            f"the secret file {path} holds {len(raw)} bytes that are not text, too few or too regular; "
            f"{HOW_TO_MAKE_ONE}"
        )
    return raw


def _decoded(secret: str) -> bytes | None:
    """The key bytes a hex or base64 text stands for (None when it is neither)."""
    if _HEX.match(secret) and len(secret) % 2 == 0:
        return bytes.fromhex(secret)
    # random base64 mixes upper and lower case; a lower-case word run would otherwise pass as base64
    if _BASE64.match(secret) and not secret.islower() and not secret.isupper():
        body = secret.rstrip("=")
        padded = body + "=" * (-len(body) % 4)
        try:
            return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def _patterned(key: bytes) -> bool:
    """Too few distinct bytes, a repeated block, or an arithmetic run (00 01 02 ...): not random.

    32 random bytes show about 30 distinct values; fewer than half is a pattern or a typed word.
    """
    if len(set(key)) < len(key) // 2:
        return True
    for period in range(1, len(key) // 2 + 1):
        if all(key[i] == key[i % period] for i in range(len(key))):
            return True
    steps = {(b - a) % 256 for a, b in itertools.pairwise(key)}
    return len(steps) == 1


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and YAML file, with explicit overrides on top.

    Raises
    ------
    ConfigFileError
        The configuration file cannot be read, is not YAML, has an unknown key or holds the secret.
    pydantic.ValidationError
        A value is invalid (:func:`describe_validation_error` makes it one line).
    """
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except OSError as exc:  # the folder the file is looked for in cannot be read
        raise ConfigFileError(
            f"cannot read the configuration file {config_file()} ({exc.strerror or type(exc).__name__}): "
            "give this user read access or point COHORTPOOL_CONFIG at a readable file"
        ) from None
