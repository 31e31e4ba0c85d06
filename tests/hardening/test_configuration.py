"""Bad configuration: missing or weak secret (refused outside the demo), unknown site, invalid cron.

Each ends with exit code 2 and a message saying what is wrong and what to do, before any work is done.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import SECRET, cli

from cohortpool.config import WeakSecretError, check_secret_strength, load_settings

pytestmark = pytest.mark.xdist_group("hardening-config")
DEMO_SECRET = "cohortpool-DEMO-ONLY-secret-never-use-for-real-data"


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("short-secret", "placeholder"),
        ("a-short-passphrase", "neither hex nor base64"),
        ("9f2c0d41b7e85a63", "carries 64 bits, fewer than 256"),
        ("a" * 64, "too repetitive"),
        ("changeme-0123456789", "placeholder"),
        ("changeme-changeme-secret-XYZQW", "placeholder"),
        ("SECRET_2024_0000000", "placeholder"),
        (DEMO_SECRET, "DEMO-ONLY secret is public"),
    ],
)
def test_a_weak_secret_is_refused_saying_why_without_quoting_it(secret: str, why: str) -> None:
    with pytest.raises(WeakSecretError) as error:
        check_secret_strength(secret)
    assert why in str(error.value) and "openssl rand" in str(error.value)
    assert "cohortpool keygen" in str(error.value)
    assert secret not in str(error.value)


def test_a_random_secret_passes_and_the_demo_secret_only_in_the_demo(monkeypatch) -> None:
    assert check_secret_strength(SECRET) == SECRET
    monkeypatch.setenv("COHORTPOOL_SECRET", DEMO_SECRET)
    with pytest.raises(WeakSecretError):
        load_settings().secret_bytes()
    monkeypatch.setenv("COHORTPOOL_DEMO", "true")
    assert load_settings().secret_bytes() == DEMO_SECRET.encode()


@pytest.mark.parametrize("secret", ["", "short", DEMO_SECRET])
def test_deid_with_a_missing_or_weak_secret_exits_2_before_writing(tmp_path: Path, secret: str) -> None:
    drop = tmp_path / "site01" / "2024-05-06"
    (drop / "dicom").mkdir(parents=True)
    proc = cli(
        "deid", str(drop), str(tmp_path / "out"), "--site", "site01", env={"COHORTPOOL_SECRET": secret}
    )
    assert proc.returncode == 2, proc.stderr
    assert "COHORTPOOL_SECRET" in proc.stderr
    assert not (tmp_path / "out").exists()
    assert secret == "" or secret not in proc.stderr


def test_run_with_a_weak_secret_exits_2_naming_the_fix(tmp_path: Path) -> None:
    (tmp_path / "landing").mkdir()
    proc = cli(
        "run", str(tmp_path / "landing"), "--out", str(tmp_path / "out"), env={"COHORTPOOL_SECRET": "abc"}
    )
    assert proc.returncode == 2 and "openssl rand" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_run_without_a_declared_site_exits_2_naming_the_registry(tmp_path: Path) -> None:
    (tmp_path / "landing" / "site01").mkdir(parents=True)
    config = tmp_path / "cohortpool.yaml"
    config.write_text("small_cell_threshold: 5\n", encoding="utf-8")
    args = ["run", str(tmp_path / "landing"), "--out", str(tmp_path / "out")]
    proc = cli(*args, env={"COHORTPOOL_CONFIG": str(config)})
    assert proc.returncode == 2 and "no site is declared" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_run_with_a_site_pinning_another_key_exits_2_naming_both_fingerprints(tmp_path: Path) -> None:
    from cohortpool.contract.keys import key_fingerprint

    (tmp_path / "landing").mkdir()
    pinned = key_fingerprint(b"another consortium's key")
    config = tmp_path / "cohortpool.yaml"
    config.write_text(f"sites:\n  - site_id: site01\n    key_fingerprint: '{pinned}'\n", encoding="utf-8")
    args = ["run", str(tmp_path / "landing"), "--out", str(tmp_path / "out")]
    proc = cli(*args, env={"COHORTPOOL_CONFIG": str(config)})
    assert proc.returncode == 2, proc.stderr
    assert pinned in proc.stderr and key_fingerprint(SECRET.encode()) in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_invalid_site_id_in_the_configuration_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "cohortpool.yaml"
    config.write_text('sites:\n  - site_id: "x\'; drop table raw.sites; --"\n', encoding="utf-8")
    (tmp_path / "landing").mkdir()
    proc = cli(
        "run",
        str(tmp_path / "landing"),
        "--out",
        str(tmp_path / "out"),
        env={"COHORTPOOL_CONFIG": str(config)},
    )
    assert proc.returncode == 2 and "invalid configuration" in proc.stderr and "site_id" in proc.stderr


def test_a_misspelt_site_option_exits_2_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "cohortpool.yaml"
    config.write_text("sites:\n  - site_id: site01\n    dicomweb_ulr: http://pacs.local\n", encoding="utf-8")
    proc = cli("config", env={"COHORTPOOL_CONFIG": str(config)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        f"error: invalid configuration: {config}:3: unknown key 'dicomweb_ulr' in sites[0] (site01); "
        "nearest valid key: dicomweb_url\n"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("small_cell_treshold: 10\n", ":1: unknown key 'small_cell_treshold'"),
        ("min_k_anonimity: 3\n", ":1: unknown key 'min_k_anonimity'; nearest valid key: min_k_anonymity"),
        ("sites:\n  - site_id: site01\n  - [broken\n", ":4: not valid YAML"),
    ],
)
def test_the_issues_misspellings_and_a_yaml_error_stop_run_with_one_line(
    tmp_path: Path, text: str, says: str
) -> None:
    (tmp_path / "landing").mkdir()
    config = tmp_path / "cohortpool.yaml"
    config.write_text(text, encoding="utf-8")
    proc = cli(
        "run",
        str(tmp_path / "landing"),
        "--out",
        str(tmp_path / "out"),
        env={"COHORTPOOL_CONFIG": str(config)},
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{config}{says}" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_unknown_site_names_the_declared_ones() -> None:
    with pytest.raises(KeyError) as error:
        load_settings().site("site99")
    assert "site 'site99' is not declared (declared sites: site01, site02, site03)" in str(error.value)


@pytest.mark.parametrize(
    "how", [("--cron", "61 * * * *"), ("env", "every night at two")], ids=["option", "configuration"]
)
def test_serve_with_an_invalid_cron_exits_2_before_serving(tmp_path: Path, how: tuple[str, str]) -> None:
    kind, cron = how
    args = ["serve", "--out", str(tmp_path / "out")]
    env = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}  # never reached: the cron is checked first
    if kind == "--cron":
        args += ["--cron", cron]
    else:
        env["COHORTPOOL_SCHEDULE_CRON"] = cron
    proc = cli(*args, env=env, timeout=180)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not a cron expression" in proc.stderr and cron in proc.stderr
