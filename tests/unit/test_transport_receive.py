"""`receive` at the hub: intact arrivals of declared sites are admitted whole, everything else is refused
into rejected/ with a reason naming the file or the key and what to do; a second receive changes nothing.
(The guards against links, edited or wrongly keyed manifests, future nights and replays:
``test_transport_receive_guards.py``.)"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.transport import Arrival, check_submission, receive
from transport_support import (
    FINGERPRINT,
    OTHER_FINGERPRINT,
    OTHER_SECRET,
    SECRET,
    edit_manifest,
    make_submission,
    tree,
)

NIGHT = "2025-03-01"
REGISTRY: dict[str, str | None] = {"site01": FINGERPRINT, "site02": None}
DICOM = "dicom/P0/1.2.0/1.2.3.0.dcm"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    monkeypatch.setenv("COHORTPOOL_SECRET", SECRET.decode())  # the hub holds the consortium secret
    return inbox, out


def _receive(inbox: Path, out: Path, registry: dict[str, str | None] = REGISTRY) -> list[Arrival]:
    """``receive`` as the hub runs it: with the consortium secret."""
    return receive(inbox, out, registry, secret=SECRET)


def _arrive(inbox: Path, site: str = "site01", night: str = NIGHT, **options) -> Path:
    return make_submission(inbox / site / night, site=site, night=night, **options)


def _reason(out: Path, site: str = "site01", night: str = NIGHT) -> dict:
    return json.loads((out / "rejected" / site / night / "reason.json").read_text(encoding="utf-8"))


def test_intact_submission_is_admitted_whole_and_a_second_receive_changes_nothing(hub) -> None:
    inbox, out = hub
    expected = tree(_arrive(inbox))
    [arrival] = _receive(inbox, out)
    assert (arrival.status, arrival.path) == ("admitted", out / "submissions" / "site01" / NIGHT)
    assert tree(out / "submissions" / "site01" / NIGHT) == expected
    assert list((inbox / "site01").iterdir()) == []
    snapshot = tree(out)
    assert _receive(inbox, out) == []
    assert tree(out) == snapshot


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _list_outside(submission: Path) -> None:
    """A submission.json naming a file outside its folder (the hub must not even look there), sealed
    again with the consortium key: the path is refused for itself, not for the seal."""
    edit_manifest(submission, lambda document: document["files"].update({"../../../etc/hostname": "0" * 64}))


@pytest.mark.parametrize(
    ("damage", "check", "file"),
    [
        (lambda s: _flip(s / DICOM), "sha256", DICOM),
        (lambda s: _truncate(s / "clinical.csv"), "size", "clinical.csv"),
        (lambda s: (s / DICOM).unlink(), "missing", DICOM),
        (lambda s: (s / "dicom/notes.txt").write_text("unlisted"), "unlisted", "dicom/notes.txt"),
        (lambda s: (s / "dicom/P0/link.dcm").symlink_to("/etc/hostname"), "not_regular", "dicom/P0/link.dcm"),
        (lambda s: (s / "dicom/P9").symlink_to("/etc", target_is_directory=True), "not_regular", "dicom/P9"),
        (lambda s: (s / "submission.json").write_text("{not json"), "manifest", "submission.json"),
        (_list_outside, "manifest", "submission.json"),
    ],
    ids=[
        "flipped-byte",
        "truncated",
        "missing",
        "unlisted-extra",
        "symlink",
        "linked-folder",
        "bad-manifest",
        "path-outside",
    ],
)
def test_damaged_submission_is_refused_naming_the_file(hub, damage, check, file) -> None:
    inbox, out = hub
    damage(_arrive(inbox))
    [arrival] = _receive(inbox, out)
    assert arrival.status == "refused"
    reason = _reason(out)
    assert reason["problems"][0]["check"] == check and reason["problems"][0]["file"] == file
    assert file in reason["reason"]
    # and what to do about it, in the reason and beside each problem
    action = "ask site01 to re-run deid" if check == "manifest" else "ask site01 to push 2025-03-01 again"
    assert action in reason["reason"] and reason["action"].startswith(action)
    assert all(p["action"] for p in reason["problems"])
    assert not (out / "submissions").exists()
    assert list((inbox / "site01").iterdir()) == []


def test_every_damaged_file_is_listed_not_only_the_first(hub) -> None:
    inbox, out = hub
    submission = _arrive(inbox)
    _flip(submission / DICOM)
    _truncate(submission / "reads.csv")
    [arrival] = _receive(inbox, out)
    assert {(p.check, p.file) for p in arrival.problems} == {("sha256", DICOM), ("size", "reads.csv")}
    assert "(and 1 more problem)" in arrival.reason


@pytest.mark.parametrize(
    ("site", "fingerprint", "secret", "admitted", "says"),
    [
        (
            "site01",
            OTHER_FINGERPRINT,
            OTHER_SECRET,
            False,
            f"key_fingerprint {OTHER_FINGERPRINT} differs from {FINGERPRINT}, the one the registry pins",
        ),
        ("site01", None, SECRET, False, f"no key_fingerprint, but the registry pins {FINGERPRINT}"),
        ("site02", FINGERPRINT, SECRET, True, ""),  # not pinned: the hub's own key decides
        # not pinned, but keyed with another secret: the hub's key is compared for every site
        (
            "site02",
            OTHER_FINGERPRINT,
            OTHER_SECRET,
            False,
            f"key_fingerprint {OTHER_FINGERPRINT} differs from {FINGERPRINT}, the hub's key",
        ),
        ("site02", None, SECRET, False, f"no key_fingerprint (the hub's key is {FINGERPRINT})"),
        ("site09", FINGERPRINT, SECRET, False, "site 'site09' is not declared"),
    ],
)
def test_site_and_key_fingerprint_are_checked_against_the_registry_and_the_hubs_key(
    hub, site, fingerprint, secret, admitted, says
) -> None:
    inbox, out = hub
    _arrive(inbox, site=site, fingerprint=fingerprint, secret=secret)
    [arrival] = _receive(inbox, out)
    assert arrival.admitted is admitted
    if not admitted:
        reason = _reason(out, site)["reason"]
        assert says in reason
        assert (
            "declare it under `sites:`" in reason if site == "site09" else "with the consortium key" in reason
        )


def test_a_submission_filed_under_another_site_is_refused(hub) -> None:
    inbox, out = hub
    make_submission(inbox / "site02" / NIGHT, site="site01")
    [arrival] = _receive(inbox, out)
    assert arrival.status == "refused" and "arrived as site02" in arrival.reason


def test_same_submission_again_is_a_duplicate_and_a_changed_one_replaces_the_admitted_whole(hub) -> None:
    inbox, out = hub
    first = tmp = inbox.parent / "site-copy"
    make_submission(tmp)
    shutil.copytree(first, inbox / "site01" / NIGHT)
    _receive(inbox, out)
    shutil.copytree(first, inbox / "site01" / NIGHT)
    snapshot = tree(out)
    [again] = _receive(inbox, out)
    assert again.status == "duplicate" and tree(out) == snapshot
    assert list((inbox / "site01").iterdir()) == []
    (first / DICOM).unlink()
    make_submission(first, files={"clinical.csv": b"site_id,patient_id\nsite01,P00000000000000AA\n"})
    shutil.copytree(first, inbox / "site01" / NIGHT)
    [changed] = _receive(inbox, out)
    assert changed.status == "replaced"
    assert tree(out / "submissions" / "site01" / NIGHT) == tree(first)
    assert not (out / ".superseded").exists()


def test_a_receive_killed_after_claiming_is_finished_by_the_next_one(hub) -> None:
    inbox, out = hub
    expected = tree(_arrive(inbox))
    # what a kill right after the claim leaves: the arrival moved under OUT/.receiving, not yet filed
    claimed = out / ".receiving" / "site01" / NIGHT
    claimed.parent.mkdir(parents=True)
    (inbox / "site01" / NIGHT).rename(claimed)
    [arrival] = _receive(inbox, out)
    assert arrival.status == "admitted"
    assert tree(out / "submissions" / "site01" / NIGHT) == expected
    assert not (out / ".receiving").exists()


def test_a_receive_killed_while_copying_to_another_file_system_copies_again(hub) -> None:
    inbox, out = hub
    expected = tree(_arrive(inbox))
    # claimed in place in the inbox, and half a copy under OUT: the copy is thrown away and made again
    (inbox / "site01" / NIGHT).rename(inbox / "site01" / f".{NIGHT}.receiving")
    half = out / ".receiving" / "site01" / f".{NIGHT}.copying"
    half.mkdir(parents=True)
    (half / "clinical.csv").write_text("half")
    [arrival] = _receive(inbox, out)
    assert arrival.status == "admitted"
    assert tree(out / "submissions" / "site01" / NIGHT) == expected
    assert list((inbox / "site01").iterdir()) == [] and not (out / ".receiving").exists()


def test_out_on_another_file_system_is_copied_whole(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the test's temporary folder")
    inbox = tmp_path / "inbox"
    expected = tree(_arrive(inbox))
    _flip(_arrive(inbox, site="site02") / DICOM)
    out = Path(tempfile.mkdtemp(prefix="cohortpool-receive-", dir=shm))
    try:
        arrivals = {a.site: a for a in _receive(inbox, out)}
        assert arrivals["site01"].status == "admitted" and arrivals["site02"].status == "refused"
        assert tree(out / "submissions" / "site01" / NIGHT) == expected
        assert (out / "rejected" / "site02" / NIGHT / "reason.json").is_file()
        assert [p for p in inbox.rglob("*") if p.is_file()] == []
    finally:
        shutil.rmtree(out)


def test_a_receive_killed_while_replacing_puts_the_old_version_back_or_finishes(hub) -> None:
    inbox, out = hub
    old = tree(_arrive(inbox))
    _receive(inbox, out)
    # a kill after the old version was parked and before the new one moved in: the next receive restores
    # the old one, then the claimed new one replaces it properly
    parked = out / ".superseded" / "site01" / NIGHT
    parked.parent.mkdir(parents=True)
    (out / "submissions" / "site01" / NIGHT).rename(parked)
    new = tree(_arrive(inbox, files={"extra.csv": b"x\n"}))
    claimed = out / ".receiving" / "site01" / NIGHT
    claimed.parent.mkdir(parents=True)
    (inbox / "site01" / NIGHT).rename(claimed)
    [arrival] = _receive(inbox, out)
    assert arrival.status == "replaced"
    assert tree(out / "submissions" / "site01" / NIGHT) == new != old
    assert not (out / ".superseded").exists()


def test_cli_prints_one_line_per_refusal_with_the_reason_and_exits_1(hub, monkeypatch) -> None:
    inbox, out = hub
    _arrive(inbox, site="site02")
    _flip(_arrive(inbox, site="site03") / DICOM)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["receive", str(inbox), "--out", str(out)])
    assert result.exit_code == 1, result.output
    refused = [line for line in result.output.splitlines() if line.startswith("refused")]
    assert refused == [
        f"refused site03/{NIGHT}: {_reason(out, 'site03')['reason']}; "
        f"see {out}/rejected/site03/{NIGHT}/reason.json"
    ]
    assert DICOM in refused[0]
    assert f"admitted site02/{NIGHT}" in result.output
    again = CliRunner().invoke(app, ["receive", str(inbox), "--out", str(out)])
    assert again.exit_code == 0 and "nothing arrived" in again.output


def test_an_out_folder_inside_the_inbox_is_bad_usage_and_changes_nothing(hub) -> None:
    inbox, _out = hub
    _arrive(inbox)
    snapshot = tree(inbox)
    result = CliRunner().invoke(app, ["receive", str(inbox), "--out", str(inbox / "hub")])
    assert result.exit_code == 2 and "must not lie inside each other" in result.output
    assert tree(inbox) == snapshot and not (inbox / "hub").exists()


def test_reason_json_is_deterministic(tmp_path: Path) -> None:
    reasons = []
    for run in ("a", "b"):
        inbox, out = tmp_path / run / "inbox", tmp_path / run / "out"
        _flip(_arrive(inbox) / DICOM)
        _receive(inbox, out)
        reasons.append((out / "rejected" / "site01" / NIGHT / "reason.json").read_bytes())
    assert reasons[0] == reasons[1]


def test_hidden_partial_uploads_are_not_arrivals(hub) -> None:
    inbox, out = hub
    make_submission(inbox / ".incoming" / f"site01-{NIGHT}.partial")
    assert _receive(inbox, out) == []
    assert os.listdir(inbox / ".incoming")


def test_check_submission_checks_in_place_and_moves_nothing(tmp_path: Path) -> None:
    submission = make_submission(tmp_path / "submissions" / "site01" / NIGHT)
    before = tree(submission)
    listing, problems = check_submission(submission, "site01", NIGHT, REGISTRY, secret=SECRET)
    assert problems == [] and listing is not None and listing.site_id == "site01"
    _flip(submission / DICOM)
    _listing, problems = check_submission(submission, "site01", NIGHT, REGISTRY, secret=SECRET)
    assert [(p.check, p.file) for p in problems] == [("sha256", DICOM)]
    assert set(tree(submission)) == set(before)
