"""`cohortpool version`, `config`, `config check`, `keygen`, and help that renders as written."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohortpool import __version__
from cohortpool.cli import app
from cohortpool.config import check_secret_strength
from cohortpool.contract.keys import key_fingerprint
from cohortpool.deid.profile import EDITION

RUNNER = CliRunner()
KEY = hashlib.sha256(b"cli info tests").hexdigest()


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_version_prints_the_package_version_and_the_profile_edition() -> None:
    result = RUNNER.invoke(app, ["version"])
    assert result.exit_code == 0
    assert _lines(result.output) == [f"cohortpool {__version__}", f"de-identification profile: {EDITION}"]


def test_config_prints_the_key_fingerprint_and_never_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHORTPOOL_SECRET", KEY)
    result = RUNNER.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["key_fingerprint"] == key_fingerprint(KEY.encode())
    assert shown["secret"] == "COHORTPOOL_SECRET"
    assert [s["site_id"] for s in shown["sites"]] == ["site01", "site02", "site03"]
    assert KEY not in result.output


def test_config_with_a_weak_key_shows_the_rest_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHORTPOOL_SECRET", "changeme-changeme-secret-XYZQW")
    result = RUNNER.invoke(app, ["config"])
    assert result.exit_code == 2
    assert (
        '"key_fingerprint": null' in result.output
        and '"secret": "COHORTPOOL_SECRET: refused"' in result.output
    )
    assert result.output.strip().splitlines()[-1].startswith("error: the consortium secret is a placeholder")


def test_config_check_validates_a_file_and_runs_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("COHORTPOOL_SECRET", raising=False)
    key = tmp_path / "consortium.key"
    key.write_text(KEY + "\n")
    good = tmp_path / "good.yaml"
    fingerprint = key_fingerprint(KEY.encode())
    good.write_text(
        f"secret_file: {key}\nsites:\n  - site_id: site01\n    key_fingerprint: {fingerprint}\n"
        "    timezone: Europe/Paris\n"
    )
    monkeypatch.chdir(tmp_path)
    result = RUNNER.invoke(app, ["config", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert _lines(result.output) == [
        f"{good}: valid; sites: site01",
        f"consortium key: secret_file {key}, fingerprint {fingerprint}",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["consortium.key", "good.yaml"]  # nothing written


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "small_cell_treshold: 10\n",
            ":1: unknown key 'small_cell_treshold'; nearest valid key: small_cell_threshold",
        ),
        ("sites: [site01\n", ":2: not valid YAML"),
        (f"secret: {KEY}\n", ":1: `secret:` refused"),
        ("sites:\n  - site_id: site01\n    timezone: Mars/Olympus\n", "sites.0.timezone: unknown time zone"),
        ("sites:\n  - site_id: site01\n    key_fingerprint: deadbeefdeadbeef\n", "pins key fingerprint"),
        (
            "sites:\n  - site_id: site01\n    key_fingerprint: 1234567890123456\n",
            "write the fingerprint in quotes",
        ),
    ],
    ids=["unknown-key", "yaml", "secret-in-file", "timezone", "pinned-fingerprint", "unquoted-digits"],
)
def test_config_check_refuses_a_bad_file_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.setenv("COHORTPOOL_SECRET", KEY)
    path = tmp_path / "cohortpool.yaml"
    path.write_text(text)
    result = RUNNER.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2
    lines = _lines(result.output)
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert KEY not in result.output


def test_config_check_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = RUNNER.invoke(app, ["config", "check", str(tmp_path / "nowhere.yaml")])
    assert result.exit_code == 2 and _lines(result.output) == [
        f"error: {tmp_path / 'nowhere.yaml'}: no such file"
    ]


def test_keygen_writes_a_256_bit_key_readable_by_its_owner_only_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "consortium.key"
    result = RUNNER.invoke(app, ["keygen", str(path)])
    assert result.exit_code == 0, result.output
    text = path.read_text()
    key = text.strip()
    assert text == key + "\n" and len(key) == 64 and int(key, 16) >= 0
    assert check_secret_strength(key) == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert f"its fingerprint is {key_fingerprint(key.encode())}" in result.output and key not in result.output
    again = RUNNER.invoke(app, ["keygen", str(path)])
    assert again.exit_code == 2 and "is never overwritten" in again.output
    assert path.read_text() == text
    other = tmp_path / "other.key"
    assert RUNNER.invoke(app, ["keygen", str(other)]).exit_code == 0
    assert other.read_text() != text  # random, not derived


def test_keygen_into_a_missing_folder_exits_2(tmp_path: Path) -> None:
    result = RUNNER.invoke(app, ["keygen", str(tmp_path / "no" / "such.key")])
    assert result.exit_code == 2 and "cannot create" in result.output


def _help(*verb: str) -> str:
    env = {"COLUMNS": "80", "TERM": "xterm"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cohortpool")), *verb, "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, **env},
    )
    return done.stdout


def test_help_names_arguments_and_keeps_the_docstrings_paragraphs() -> None:
    from cohortpool.cli.deid import deid

    text = _help("deid")
    assert "Usage: cohortpool deid [OPTIONS] IN_DIR OUT_DIR" in text
    assert "{in_dir}" not in text and "{out_dir}" not in text
    # each paragraph of the docstring is one block of the help, in order, separated by a blank line
    paragraphs = [" ".join(p.split()) for p in (deid.__doc__ or "").split("\n\n") if p.strip()]
    blocks = [" ".join(b.split()) for b in re.split(r"\n[ ]*\n", text)]
    for paragraph in paragraphs:
        assert any(block == paragraph for block in blocks), (paragraph, blocks)
    # no ragged lines: a paragraph's lines are filled to the terminal's width, not cut where the source was
    body = text.split("Usage:")[1].split("╭")[0]
    lines = [line.rstrip() for line in body.splitlines() if line.strip()]
    assert not any(line.endswith(" and") and len(line) < 50 for line in lines), lines


def test_group_help_keeps_its_usage() -> None:
    assert "Usage: cohortpool config [OPTIONS] COMMAND [ARGS]..." in _help("config")
    assert "Usage: cohortpool config check [OPTIONS] [FILE]" in _help("config", "check")
