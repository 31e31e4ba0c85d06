"""Every refusal ends with exit 2, one line, no traceback, and changes nothing.

A night already de-identified sits in OUT with its vault; each refused `cohortpool deid` (bad arguments,
an undeclared site, a weak or unexpected key, a misplaced vault, a bad configuration) must leave both
byte for byte as they were (before, a refused run removed the existing submission.json first). `fetch`
and `listen` refuse an undeclared site before any watermark, ledger or folder is written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.contract.keys import key_fingerprint

RUNNER = CliRunner()
KEY = hashlib.sha256(b"refusal tests").hexdigest()
OTHER_KEY = hashlib.sha256(b"another consortium").hexdigest()
PINNED = key_fingerprint(OTHER_KEY.encode())
NIGHT = "2024-05-06"


def _drop(root: Path) -> Path:
    drop = root / "landing" / "site01" / NIGHT
    (drop / "dicom").mkdir(parents=True)
    for n in range(2):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT, with a 2x2 image
        ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = f"1.2.3.1.{n}", "1.2.3", "1.2.3.2"
        ds.PatientID, ds.PatientName, ds.Modality = "MRN42", "Doe^Jane", "CT"
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 2, 2, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = bytes(4)
        ds.save_as(drop / "dicom" / f"IM{n}.dcm", enforce_file_format=True)
    return drop


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """A drop de-identified once: (drop, OUT, vault)."""
    monkeypatch.setenv("COHORTPOOL_SECRET", KEY)
    drop, out, vault = _drop(tmp_path), tmp_path / "out", tmp_path / "vault"
    args = ["deid", str(drop), str(out), "--site", "site01", "--vault", str(vault), "--workers", "1"]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "submission.json").is_file()
    return drop, out, vault


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "refused.yaml"
    path.write_text(text)
    monkeypatch.setenv("COHORTPOOL_CONFIG", str(path))


# (name, how the command is changed, what the one line says)
REFUSALS = [
    ("undeclared site", {"site": "site09"}, "site 'site09' is not declared"),
    ("malformed site id", {"site": "Site 1"}, "--site: site_id 'Site 1' must be"),
    ("vault inside the output", {"vault": "OUT/v"}, "is inside the output folder"),
    ("night disagrees", {"night": "2024-05-07"}, "disagrees with the drop folder's night"),
    ("weak key", {"env": "changeme-changeme-secret-XYZQW"}, "is a placeholder"),
    ("short key", {"env": KEY[:40]}, "fewer than 256"),
    (
        "demo key",
        {"env": "cohortpool-DEMO-ONLY-secret-never-use-for-real-data"},
        "DEMO-ONLY secret is public",
    ),
    ("no key", {"env": ""}, "no consortium secret"),
    ("missing secret file", {"secret_file": "nowhere.key"}, "--secret-file"),
    (
        "pinned fingerprint",
        {"config": f"sites:\n  - site_id: site01\n    key_fingerprint: '{PINNED}'\n"},
        f"pins key fingerprint {PINNED}",
    ),
    (
        "unknown key",
        {"config": "sites:\n  - site_id: site01\nvault_dri: v\n"},
        "nearest valid key: vault_dir",
    ),
    ("yaml syntax", {"config": "sites: [site01\n"}, "refused.yaml:2: not valid YAML"),
    ("secret in the file", {"config": f"secret: {KEY}\n"}, "`secret:` refused"),
    (
        "unknown profile option",
        {"config": "sites:\n  - site_id: site01\ndeid:\n  options: [retain_everything]\n"},
        "invalid de-identification configuration",
    ),
    ("drop is not a folder", {"drop": "missing"}, "is not a folder"),
]


@pytest.mark.parametrize(("change", "says"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_refused_deid_exits_2_with_one_line_and_changes_nothing(
    done: tuple[Path, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str],
    says: str,
) -> None:
    drop, out, vault = done
    before = {"out": _tree(out), "vault": _tree(vault), "drop": _tree(drop)}
    site, vault_arg = change.get("site", "site01"), change.get("vault", str(vault)).replace("OUT", str(out))
    drop_arg = str(tmp_path / change["drop"]) if "drop" in change else str(drop)
    args = ["deid", drop_arg, str(out), "--site", site, "--vault", vault_arg, "--workers", "1"]
    if "night" in change:
        args += ["--night", change["night"]]
    if "secret_file" in change:
        args += ["--secret-file", str(tmp_path / change["secret_file"])]
    if "env" in change:
        monkeypatch.setenv("COHORTPOOL_SECRET", change["env"])
    if "config" in change:
        _config(tmp_path, monkeypatch, change["config"])
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # ended by the CLI, not by an escaped exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
    assert "Traceback" not in result.output and KEY not in result.output
    assert {"out": _tree(out), "vault": _tree(vault), "drop": _tree(drop)} == before
    assert not (out / "v").exists()


def test_fetch_refuses_an_undeclared_site_before_any_state(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    result = RUNNER.invoke(
        app, ["fetch", "http://127.0.0.1:9", "--landing", str(landing), "--site", "site09"]
    )
    assert result.exit_code == 2
    assert [line for line in result.output.splitlines() if line] == [
        f"error: site 'site09' is not declared (declared sites: site01, site02, site03): add it under "
        f"`sites:` in {Path(__import__('os').environ['COHORTPOOL_CONFIG'])} (a site id nobody declared would "
        "file a hospital's data under a new name)"
    ]
    assert list(landing.iterdir()) == []  # no watermark, no ledger, no night folder


def test_listen_refuses_an_undeclared_site_before_listening(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    result = RUNNER.invoke(app, ["listen", "--landing", str(landing), "--site", "site09", "--port", "0"])
    assert result.exit_code == 2 and "site 'site09' is not declared" in result.output
    assert "listening on" not in result.output and list(landing.iterdir()) == []


def test_a_key_the_registry_does_not_pin_is_refused_naming_both_fingerprints(
    done: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop, out, vault = done
    _config(tmp_path, monkeypatch, f"sites:\n  - site_id: site01\n    key_fingerprint: '{PINNED}'\n")
    args = ["deid", str(drop), str(out), "--site", "site01", "--vault", str(vault), "--workers", "1"]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert PINNED in line and key_fingerprint(KEY.encode()) in line
    # the matching pin is accepted: the same command runs
    _config(
        tmp_path,
        monkeypatch,
        f"sites:\n  - site_id: site01\n    key_fingerprint: '{key_fingerprint(KEY.encode())}'\n",
    )
    assert RUNNER.invoke(app, args).exit_code == 0
