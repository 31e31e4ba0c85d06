"""`cohortpool deid` usage errors exit 2 with a clear message; a clean drop exits 0."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.contract.keys import key_fingerprint
from dicom_support import tiny_ct

RUNNER = CliRunner()


def _drop(root, name: str = "2024-05-06"):
    drop = root / "site01" / name
    (drop / "dicom" / "DOE_JANE_MRN42").mkdir(parents=True)
    (drop / "dicom" / "DOE_JANE_MRN42" / "IM1.dcm").write_bytes(tiny_ct())
    return drop


def test_missing_secret_exits_2_and_says_how_to_set_it(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("COHORTPOOL_SECRET", raising=False)
    result = RUNNER.invoke(app, ["deid", str(_drop(tmp_path)), str(tmp_path / "out"), "--site", "site01"])
    assert result.exit_code == 2
    assert "COHORTPOOL_SECRET" in result.output


def test_vault_inside_the_submission_is_refused(tmp_path, test_secret) -> None:
    out = tmp_path / "out"
    args = ["deid", str(_drop(tmp_path)), str(out), "--site", "site01", "--vault", str(out / "vault")]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 2
    assert "inside the output" in result.output
    assert not (out / "vault").exists()


@pytest.mark.parametrize(
    ("site", "folder", "night", "message"),
    [
        ("Site 1", "2024-05-06", None, "--site"),
        ("site01", "2024-05-06", "2024-05-07", "disagrees"),
        ("site01", "tonight", "2024-13-01", "not a date"),
    ],
)
def test_bad_usage_exits_2_naming_the_option(tmp_path, test_secret, site, folder, night, message) -> None:
    args = ["deid", str(_drop(tmp_path, folder)), str(tmp_path / "out"), "--site", site]
    if night:
        args += ["--night", night]
    result = RUNNER.invoke(app, [*args, "--vault", str(tmp_path / "v")])
    assert result.exit_code == 2
    assert message in result.output


def test_clean_drop_exits_0_with_a_submission_and_no_phi_in_the_output(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("COHORTPOOL_SECRET", raising=False)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("f67029d1e58c15a539ec52cc4fcb16ef128c891a1838316400661e1d43ba0c5f\n")
    out = tmp_path / "out"
    args = ["deid", str(_drop(tmp_path)), str(out), "--site", "site01", "--vault", str(tmp_path / "v"),
            "--secret-file", str(secret_file), "--workers", "1"]  # fmt: skip
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "submission.json").read_text())
    assert summary["counts"]["deidentified"] == 1 and summary["night"] == "2024-05-06"
    assert summary["profile"]["edition"] == "DICOM PS3.15 2026c"
    # the key's fingerprint, not the key: the hub can tell a site keyed with another secret
    assert summary["key_fingerprint"] == key_fingerprint(secret_file.read_text().strip().encode())
    for text in (result.output, *(p.as_posix() for p in out.rglob("*"))):
        assert (
            "MRN42" not in text
            and "DOE" not in text
            and "f67029d1e58c15a539ec52cc4fcb16ef128c891a1838316400661e1d43ba0c5f" not in text
        )


def test_an_undated_drop_is_filed_under_today_at_the_site_and_says_so(tmp_path, test_secret, monkeypatch):
    config = tmp_path / "cohortpool.yaml"
    # the farthest zone ahead of UTC: its date is tomorrow's UTC date for half of each day
    config.write_text("sites:\n  - site_id: site01\n    timezone: Pacific/Kiritimati\n")
    monkeypatch.setenv("COHORTPOOL_CONFIG", str(config))
    out = tmp_path / "out"
    before = dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()
    drop = _drop(tmp_path, "export")
    args = ["deid", str(drop), str(out), "--site", "site01", "--vault", str(tmp_path / "v"), "--workers", "1"]
    result = RUNNER.invoke(app, args)
    after = dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()
    assert result.exit_code == 0, result.output
    night = json.loads((out / "submission.json").read_text())["night"]
    assert night in (before, after)
    notes = [line for line in result.output.splitlines() if "YYYY-MM-DD" in line]
    assert notes == [
        f"note: {drop} is not named YYYY-MM-DD: filed as night {night}, today in Pacific/Kiritimati "
        "(pass --night YYYY-MM-DD to choose)"
    ]
