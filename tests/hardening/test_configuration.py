"""Bad configuration: missing or weak secret (refused outside the demo), unknown site, invalid cron.

Each ends with exit code 2 and a message saying what is wrong and what to do, before any work is done.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import cli

from cohortpool.config import WeakSecretError, check_secret_strength, load_settings

pytestmark = pytest.mark.xdist_group("hardening-config")
DEMO_SECRET = "cohortpool-DEMO-ONLY-secret-never-use-for-real-data"


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("short-secret", "at least 16"),
        ("aaaaaaaaaaaaaaaaaaaaaaaa", "too repetitive"),
        ("changeme-0123456789", "placeholder"),
        ("SECRET_2024_0000000", "placeholder"),
        (DEMO_SECRET, "DEMO-ONLY secret is public"),
    ],
)
def test_a_weak_secret_is_refused_saying_why_without_quoting_it(secret: str, why: str) -> None:
    with pytest.raises(WeakSecretError) as error:
        check_secret_strength(secret)
    assert why in str(error.value) and "openssl rand" in str(error.value)
    assert secret not in str(error.value)


def test_a_random_secret_passes_and_the_demo_secret_only_in_the_demo(monkeypatch) -> None:
    assert check_secret_strength("9f2c0d41b7e85a63") == "9f2c0d41b7e85a63"
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
    assert "invalid configuration" in proc.stderr and "dicomweb_ulr" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unknown_site_names_the_configured_ones() -> None:
    with pytest.raises(KeyError) as error:
        load_settings().site("site99")
    assert "site01" in str(error.value) and "site99" in str(error.value)


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
