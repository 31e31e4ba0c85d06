"""The configuration says no: unknown keys, broken YAML, a secret in the file, weak keys, bad registry
entries; and there are no built-in sites."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from cohortpool.config import (
    ConfigFileError,
    MissingSecretError,
    UndeclaredSiteError,
    WeakSecretError,
    check_secret_strength,
    describe_validation_error,
    load_settings,
    read_secret,
    read_secret_file,
)
from cohortpool.contract.keys import key_fingerprint

KEY = hashlib.sha256(b"config tests").hexdigest()  # 64 hex characters


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "cohortpool.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("COHORTPOOL_CONFIG", str(path))
    return path


def test_no_site_is_built_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHORTPOOL_CONFIG", str(tmp_path / "none.yaml"))
    settings = load_settings()
    assert settings.sites == []
    with pytest.raises(UndeclaredSiteError) as error:
        settings.site("site01")
    assert "'site01' is not declared (declared sites: none)" in str(error.value)


@pytest.mark.parametrize(
    ("text", "line", "key", "nearest"),
    [
        ("small_cell_treshold: 10\n", 1, "small_cell_treshold", "small_cell_threshold"),
        ("data_dir: out\nmin_k_anonimity: 3\n", 2, "min_k_anonimity", "min_k_anonymity"),
        ("deid:\n  allow_burnedin: true\n", 2, "allow_burnedin' in deid", "allow_burned_in"),
        (
            "sites:\n  - site_id: site01\n  - site_id: site02\n    dicomweb_ulr: http://pacs\n",
            4,
            "dicomweb_ulr' in sites[1] (site02)",
            "dicomweb_url",
        ),
        (
            "sites:\n  - site_id: site01\n    time_zone: Europe/Paris\n",
            3,
            "time_zone' in sites[0]",
            "timezone",
        ),
    ],
    ids=["top", "top-line-2", "deid", "site", "site-timezone"],
)
def test_an_unknown_key_at_any_level_names_the_file_line_and_nearest_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int, key: str, nearest: str
) -> None:
    path = _config(tmp_path, monkeypatch, text)
    with pytest.raises(ConfigFileError) as error:
        load_settings()
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: unknown key '{key}")
    assert message.endswith(f"nearest valid key: {nearest}") and "\n" not in message


@pytest.mark.parametrize(
    ("text", "line"),
    [("sites: [site01\nwarehouse: x\n", 2), ("deid:\n  options: [a]\n allow_burned_in: true\n", 3)],
)
def test_a_yaml_syntax_error_is_one_line_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int
) -> None:
    path = _config(tmp_path, monkeypatch, text)
    with pytest.raises(ConfigFileError) as error:
        load_settings()
    assert str(error.value).startswith(f"{path}:{line}: not valid YAML: ")
    assert "\n" not in str(error.value)


def test_a_configuration_that_is_not_a_mapping_is_refused(tmp_path: Path, monkeypatch) -> None:
    path = _config(tmp_path, monkeypatch, "- site01\n- site02\n")
    with pytest.raises(ConfigFileError, match=f"^{path}:1: the configuration must be a mapping"):
        load_settings()


@pytest.mark.parametrize(("key", "why"), [("secret", "secret_file"), ("demo", "cohortpool demo")])
def test_the_secret_is_refused_in_the_file_and_secret_file_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, why: str
) -> None:
    path = _config(tmp_path, monkeypatch, f"sites:\n  - site_id: site01\n{key}: {KEY}\n")
    with pytest.raises(ConfigFileError) as error:
        load_settings()
    assert str(error.value).startswith(f"{path}:3: `{key}:` refused") and why in str(error.value)
    assert KEY not in str(error.value)


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ("timezone: Europe/Pariss", "timezone", "unknown time zone 'Europe/Pariss' (nearest: Europe/Paris)"),
        ("key_fingerprint: ABC", "key_fingerprint", "16 lower-case hex characters"),
        ("expected_every_days: 0", "expected_every_days", "greater than 0"),
        ("site_id: Site 1", "site_id", "must be 2-32 characters"),
    ],
)
def test_a_bad_registry_entry_is_one_line_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, field: str, message: str
) -> None:
    site = "site01" if not entry.startswith("site_id") else "x"
    body = f"  - {entry}\n" if entry.startswith("site_id") else f"  - site_id: {site}\n    {entry}\n"
    _config(tmp_path, monkeypatch, "sites:\n" + body)
    with pytest.raises(ValidationError) as error:
        load_settings()
    line = describe_validation_error(error.value)
    assert line.startswith(f"sites.0.{field}: ") and message in line and "\n" not in line


def test_a_site_declared_twice_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch, "sites:\n  - site_id: site01\n  - site_id: site01\n")
    with pytest.raises(ValidationError, match="site 'site01' is declared twice"):
        load_settings()


def test_a_registry_entry_carries_fingerprint_timezone_and_cadence(tmp_path: Path, monkeypatch) -> None:
    fingerprint = key_fingerprint(KEY.encode())
    _config(
        tmp_path,
        monkeypatch,
        f"sites:\n  - site_id: site01\n    key_fingerprint: {fingerprint}\n    timezone: Asia/Shanghai\n"
        "    expected_every_days: 7\n  - site_id: site02\n    expected_every_days: null\n",
    )
    one, two = load_settings().sites
    assert (one.key_fingerprint, one.timezone, one.expected_every_days) == (fingerprint, "Asia/Shanghai", 7)
    assert (two.key_fingerprint, two.timezone, two.expected_every_days) == (None, None, None)
    assert load_settings().site("site02") == two


def _b64(data: bytes, urlsafe: bool = False) -> str:
    return (base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)).decode()


RANDOM = hashlib.sha512(b"random enough for a test").digest()[:32]


@pytest.mark.parametrize(
    "secret",
    [KEY, KEY.upper(), _b64(RANDOM), _b64(RANDOM, urlsafe=True).rstrip("=")],
    ids=["hex", "HEX", "base64", "base64url"],
)
def test_a_256_bit_key_is_accepted_and_keys_with_its_text(secret: str, monkeypatch) -> None:
    assert check_secret_strength(secret) == secret
    monkeypatch.setenv("COHORTPOOL_SECRET", secret)
    # the pseudonym key is the UTF-8 text as written, as before: existing pseudonyms stay valid
    assert read_secret(None) == secret.encode("utf-8")


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        (KEY[:62], "carries 248 bits, fewer than 256"),
        (_b64(RANDOM[:31]), "carries 248 bits"),
        ("changeme-changeme-secret-XYZQW", "placeholder"),
        ("hardening-test-secret-5f0c9a7e31b24d68", "placeholder"),
        ("0" * 64, "too repetitive"),
        ("deadbeef" * 8, "too repetitive"),
        (bytes(range(32)).hex(), "too repetitive"),  # 00 01 02 ... 1f: a run, not random
        (RANDOM[:16].hex() * 2, "too repetitive"),
        ("correct horse battery staple correct horse battery", "neither hex nor base64"),
        ("thisisalongpassphrasewrittenallinlowercaseletters", "neither hex nor base64"),
        ("cohortpool-DEMO-ONLY-secret-never-use-for-real-data", "DEMO-ONLY secret is public"),
    ],
)
def test_a_weak_key_is_refused_saying_why_and_how_to_make_one(secret: str, why: str) -> None:
    with pytest.raises(WeakSecretError) as error:
        check_secret_strength(secret)
    message = str(error.value)
    assert why in message and "cohortpool keygen FILE" in message and "64 hex characters" in message
    assert secret not in message


def test_the_demo_secret_passes_only_in_the_demo() -> None:
    demo = "cohortpool-DEMO-ONLY-secret-never-use-for-real-data"
    assert check_secret_strength(demo, demo=True) == demo


def test_a_secret_file_holds_text_or_at_least_32_random_bytes(tmp_path: Path) -> None:
    text = tmp_path / "text.key"
    text.write_text(f"  {KEY}\n", encoding="ascii")
    assert read_secret_file(text) == KEY.encode()  # surrounding whitespace is not part of the key
    binary = tmp_path / "binary.key"
    binary.write_bytes(b"\xff" + RANDOM)  # not UTF-8: the raw bytes are the key
    assert read_secret_file(binary) == b"\xff" + RANDOM
    for name, content, error in (
        ("zeros.key", bytes(32), WeakSecretError),
        ("short.key", b"\xff" + RANDOM[:20], WeakSecretError),
        ("weak.key", b"short-passphrase\n", WeakSecretError),
        ("empty.key", b"\n", MissingSecretError),
    ):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(error, match="256 bits"):
            read_secret_file(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_secret_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "locked.key"
    path.write_text(KEY)
    path.chmod(0)
    with pytest.raises(MissingSecretError, match="cannot read the secret file"):
        read_secret_file(path)
