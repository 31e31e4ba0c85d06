"""What a site (or anyone who can write to its SFTP area or to a submission) must not get past the hub's
``receive``: links out of its own folder, an edited or wrongly keyed ``submission.json``, a night in the
future, a replayed older version of a night; and the command's own usage errors (no site declared, OUT
not a folder), which change nothing. Real files, real folders, real symbolic links."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.transport import Arrival, receive
from config_support import write_config
from transport_support import (
    FINGERPRINT,
    OTHER_SECRET,
    SECRET,
    edit_manifest,
    make_submission,
    tree,
)

NIGHT = "2025-03-01"
REGISTRY: dict[str, str | None] = {"site01": None, "site02": None}


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    monkeypatch.setenv("COHORTPOOL_SECRET", SECRET.decode())
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return inbox, out


def _receive(inbox: Path, out: Path, **options) -> list[Arrival]:
    return receive(inbox, out, REGISTRY, secret=SECRET, **options)


def _cli(inbox: Path, out: Path):
    return CliRunner().invoke(app, ["receive", str(inbox), "--out", str(out)])


def _reason(out: Path, site: str = "site01", night: str = NIGHT) -> dict:
    return json.loads((out / "rejected" / site / night / "reason.json").read_text(encoding="utf-8"))


def _hub_with_admitted_nights(inbox: Path, out: Path) -> dict[str, str]:
    """OUT with site02's night admitted and what a hub run writes beside it (validated, published)."""
    make_submission(inbox / "site02" / NIGHT, site="site02")
    [arrival] = _receive(inbox, out)
    assert arrival.status == "admitted"
    for folder in ("validated/site02", "published"):
        (out / folder).mkdir(parents=True)
        (out / folder / "summary.json").write_text("{}")
    return tree(out)


# 1. links ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["submissions/site02", "", "submissions", "validated"],
    ids=["another-sites-admitted-nights", "the-hubs-out", "all-admitted", "validated"],
)
def test_a_site_folder_linked_into_the_hubs_out_moves_nothing(hub, target) -> None:
    inbox, out = hub
    before = _hub_with_admitted_nights(inbox, out)
    (inbox / "site01").symlink_to(out / target if target else out, target_is_directory=True)
    [arrival] = _receive(inbox, out)
    assert (arrival.site, arrival.status) == ("site01", "ignored")
    assert arrival.problems[0].check == "link" and "hub's OUT" in arrival.reason
    assert "the hub's operator removes the link" in arrival.reason
    assert tree(out) == before  # nothing moved, nothing refused into rejected/site01
    assert not (out / "rejected").exists()
    assert (inbox / "site01").is_symlink()  # left for the operator


def test_the_cli_refuses_a_linked_site_folder_with_exit_1_and_moves_nothing(hub) -> None:
    inbox, out = hub
    before = _hub_with_admitted_nights(inbox, out)
    (inbox / "site01").symlink_to(out / "submissions" / "site02", target_is_directory=True)
    result = _cli(inbox, out)
    assert result.exit_code == 1, result.output
    assert f"left in the inbox {inbox / 'site01'}: site01: its folder" in result.output
    assert tree(out) == before


def _sftp_areas(tmp_path: Path, inbox: Path, *sites: str) -> dict[str, Path]:
    """The deployment's layout: each site writes in its own area, the hub's inbox links to each."""
    areas = {}
    for site in sites:
        area = tmp_path / "sftp" / site / "inbox" / site
        area.mkdir(parents=True)
        (inbox / site).symlink_to(area, target_is_directory=True)
        areas[site] = area
    return areas


def test_the_hubs_own_link_to_a_site_area_is_followed(hub, tmp_path: Path) -> None:
    inbox, out = hub
    area = _sftp_areas(tmp_path, inbox, "site01")["site01"]
    expected = tree(make_submission(area / NIGHT))
    [arrival] = _receive(inbox, out)
    assert arrival.status == "admitted"
    assert tree(out / "submissions" / "site01" / NIGHT) == expected
    assert list(area.iterdir()) == []


def test_a_site_that_swaps_its_area_for_a_link_is_refused_and_nothing_moves(hub, tmp_path: Path) -> None:
    inbox, out = hub
    areas = _sftp_areas(tmp_path, inbox, "site01", "site02")
    make_submission(areas["site02"] / NIGHT, site="site02")
    assert [a.status for a in _receive(inbox, out)] == ["admitted"]
    before = tree(out)
    # what a site can do in its SFTP area: rename its folder away and put a link in its place
    areas["site01"].rename(areas["site01"].with_name("site01-old"))
    areas["site01"].symlink_to(out / "submissions" / "site02", target_is_directory=True)
    [arrival] = _receive(inbox, out)
    assert (arrival.site, arrival.status, arrival.problems[0].check) == ("site01", "ignored", "link")
    assert "which is a link itself; not followed" in arrival.reason
    assert tree(out) == before


def test_two_site_folders_that_are_one_folder_are_both_left_alone(hub) -> None:
    inbox, out = hub
    expected = tree(make_submission(inbox / "site02" / NIGHT, site="site02"))
    (inbox / "site01").symlink_to(inbox / "site02", target_is_directory=True)
    arrivals = _receive(inbox, out)
    assert sorted((a.site, a.status) for a in arrivals) == [("site01", "ignored"), ("site02", "ignored")]
    assert "overlaps site02's folder" in next(a for a in arrivals if a.site == "site01").reason
    assert (tree(inbox / "site02" / NIGHT) == expected and not out.exists()) or not (
        out / "rejected"
    ).exists()


def test_a_site_folder_linked_to_the_inbox_itself_is_left_alone(hub) -> None:
    inbox, out = hub
    expected = tree(make_submission(inbox / "site02" / NIGHT, site="site02"))
    (inbox / "site01").symlink_to(inbox, target_is_directory=True)
    arrivals = {a.site: a for a in _receive(inbox, out)}
    assert arrivals["site01"].status == "ignored" and "overlaps the inbox" in arrivals["site01"].reason
    assert arrivals["site02"].status == "admitted"
    assert tree(out / "submissions" / "site02" / NIGHT) == expected


def test_a_night_linked_to_another_sites_admitted_night_is_left_and_nothing_moves(hub) -> None:
    inbox, out = hub
    before = _hub_with_admitted_nights(inbox, out)
    (inbox / "site01").mkdir()
    (inbox / "site01" / NIGHT).symlink_to(out / "submissions" / "site02" / NIGHT, target_is_directory=True)
    [arrival] = _receive(inbox, out)
    assert (arrival.status, arrival.problems[0].check) == ("ignored", "layout")
    assert tree(out) == before


# 2. the seal ---------------------------------------------------------------------------------------------


def _edit_counts(document: dict) -> None:
    document["counts"]["input_files"] = 999
    document["privacy"] = {"k_anonymity": 50}


def _edit_table(folder: Path) -> None:
    """Edit clinical.csv and make submission.json vouch for it again (sha256 and size), without the key."""
    data = b"site_id,patient_id\nsite01,P00000000000000FF\n"
    (folder / "clinical.csv").write_bytes(data)

    def vouch(document: dict) -> None:
        document["files"]["clinical.csv"] = __import__("hashlib").sha256(data).hexdigest()
        document["file_sizes"]["clinical.csv"] = len(data)

    edit_manifest(folder, vouch, secret=None)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda f: edit_manifest(f, _edit_counts, secret=None), "a seal (mac) that does not match"),
        (_edit_table, "a seal (mac) that does not match"),
        (lambda f: edit_manifest(f, lambda d: d.pop("mac"), secret=None), "no seal (mac)"),
        # made with another secret, the fingerprint rewritten to the hub's
        (lambda f: edit_manifest(f, lambda d: d.update(key_fingerprint=FINGERPRINT), OTHER_SECRET), "a seal"),
    ],
    ids=["counts-and-k-edited", "table-edited-and-vouched-for", "seal-removed", "other-secret-forged-print"],
)
def test_a_submission_json_edited_after_packaging_is_refused(hub, damage, says) -> None:
    inbox, out = hub
    damage(make_submission(inbox / "site01" / NIGHT))
    [arrival] = _receive(inbox, out)
    assert arrival.status == "refused" and arrival.problems[0].check == "mac"
    reason = _reason(out)["reason"]
    assert says in reason
    assert "edited after packaging, or made with another consortium secret" in reason
    assert "ask site01 to re-run deid for 2025-03-01 with the consortium key and push it again" in reason
    assert not (out / "submissions").exists()


def test_an_unsealed_submission_is_refused(hub) -> None:
    inbox, out = hub
    make_submission(inbox / "site01" / NIGHT, secret=None)
    [arrival] = _receive(inbox, out)
    assert arrival.status == "refused" and "no seal (mac)" in arrival.reason


def test_a_submission_json_resealed_with_the_key_after_an_edit_is_admitted(hub) -> None:
    """The seal proves who made the file, not what it says: a holder of the key may re-package."""
    inbox, out = hub
    edit_manifest(make_submission(inbox / "site01" / NIGHT), _edit_counts)
    assert [a.status for a in _receive(inbox, out)] == ["admitted"]


def test_the_cli_checks_the_seal_with_the_hubs_secret(hub) -> None:
    inbox, out = hub
    edit_manifest(make_submission(inbox / "site01" / NIGHT), _edit_counts, secret=None)
    make_submission(inbox / "site02" / NIGHT, site="site02")
    result = _cli(inbox, out)
    assert result.exit_code == 1, result.output
    assert f"refused site01/{NIGHT}: submission.json: a seal (mac) that does not match" in result.output
    assert f"admitted site02/{NIGHT}" in result.output


# 3. nights in the future ---------------------------------------------------------------------------------


def test_a_night_in_the_future_is_refused_one_day_of_slack_is_allowed(hub) -> None:
    inbox, out = hub
    today = datetime.date(2025, 3, 1)
    tomorrow, later = "2025-03-02", "2025-03-03"
    for night in (tomorrow, later, "2099-12-31"):
        make_submission(inbox / "site01" / night, night=night)
    arrivals = {a.night: a for a in _receive(inbox, out, today=today)}
    assert arrivals[tomorrow].status == "admitted"
    for night in (later, "2099-12-31"):
        assert arrivals[night].status == "refused" and arrivals[night].problems[0].check == "future_night"
        reason = _reason(out, night=night)["reason"]
        assert (
            f"night {night} is in the future (the latest night the hub takes today is 2025-03-02)" in reason
        )
        assert "ask site01 to check its clock" in reason


def test_the_cli_reads_today_in_the_hubs_time_zone(hub, tmp_path: Path, monkeypatch) -> None:
    inbox, out = hub
    # UTC+14 and UTC-12 are never on the same date: a night one day after Kiritimati's today is within the
    # slack there, and at least two days after the date at UTC-12
    ahead = datetime.datetime.now(datetime.UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Pacific/Kiritimati")
    )
    night = (ahead.date() + datetime.timedelta(days=1)).isoformat()
    for zone, status in (("Etc/GMT+12", "refused"), ("Pacific/Kiritimati", "admitted")):
        config = write_config(tmp_path / zone.replace("/", "-") / "cohortpool.yaml", hub_timezone=zone)
        monkeypatch.setenv("COHORTPOOL_CONFIG", str(config))
        make_submission(inbox / "site01" / night, night=night)
        result = _cli(inbox, out)
        assert f"{status} site01/{night}" in result.output, result.output


# 4. replays ----------------------------------------------------------------------------------------------


def test_a_replayed_older_version_of_an_admitted_night_is_refused(hub, tmp_path: Path) -> None:
    inbox, out = hub
    old = make_submission(tmp_path / "v1")
    new = make_submission(tmp_path / "v2", files={"clinical.csv": b"site_id,patient_id\nsite01,P1\n"})
    for version, status in ((old, "admitted"), (new, "replaced")):
        shutil.copytree(version, inbox / "site01" / NIGHT)
        assert [a.status for a in _receive(inbox, out)] == [status]
    admitted = tree(out / "submissions" / "site01" / NIGHT)
    shutil.copytree(old, inbox / "site01" / NIGHT)  # the older version, pushed again by anyone
    [replay] = _receive(inbox, out)
    assert (replay.status, replay.problems[0].check) == ("refused", "replay")
    reason = _reason(out)["reason"]
    assert "an older version of site01/2025-03-01" in reason and "replaced by a newer one" in reason
    assert "the newer version admitted before stays" in reason
    assert tree(out / "submissions" / "site01" / NIGHT) == admitted == tree(new)
    shutil.copytree(new, inbox / "site01" / NIGHT)  # the newest again: a duplicate, as before
    assert [a.status for a in _receive(inbox, out)] == ["duplicate"]
    newest = make_submission(tmp_path / "v3", files={"clinical.csv": b"site_id,patient_id\nsite01,P3\n"})
    shutil.copytree(newest, inbox / "site01" / NIGHT)
    assert [a.status for a in _receive(inbox, out)] == ["replaced"]


def test_a_night_refused_after_admission_can_be_sent_again(hub) -> None:
    """The hub run may move an admitted night to rejected/ (it failed verification there): the same
    version sent again is the newest the hub admitted, not a replay."""
    inbox, out = hub
    make_submission(inbox / "site01" / NIGHT)
    _receive(inbox, out)
    shutil.copytree(out / "submissions" / "site01" / NIGHT, inbox / "site01" / NIGHT)
    shutil.rmtree(out / "submissions" / "site01" / NIGHT)
    assert [a.status for a in _receive(inbox, out)] == ["admitted"]


# 5, 6. usage errors change nothing -----------------------------------------------------------------------


def _one_error_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    return lines[0]


def test_no_site_declared_is_bad_configuration_and_moves_nothing(hub, tmp_path, monkeypatch) -> None:
    inbox, out = hub
    make_submission(inbox / "site01" / NIGHT)
    snapshot = tree(inbox)
    monkeypatch.delenv("COHORTPOOL_CONFIG")
    monkeypatch.chdir(tmp_path)  # no cohortpool.yaml here either
    result = _cli(inbox, out)
    assert result.exit_code == 2
    assert "no site is declared" in _one_error_line(result.output)
    assert tree(inbox) == snapshot and not out.exists()


def test_a_hub_without_the_secret_admits_on_files_and_pins_and_says_seals_are_unchecked(
    hub, monkeypatch
) -> None:
    """A consortium may keep the key from its hub (whoever holds it can compute a known record number's
    pseudonym): receive then checks files and pinned fingerprints, and says the seals go unchecked."""
    inbox, out = hub
    make_submission(inbox / "site01" / NIGHT)
    monkeypatch.delenv("COHORTPOOL_SECRET")
    result = _cli(inbox, out)
    assert result.exit_code == 0, result.output
    assert "note: no consortium secret at the hub" in result.output
    assert (out / "submissions" / "site01" / NIGHT / "submission.json").is_file()


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_out_that_is_not_a_folder_is_bad_usage_and_moves_nothing(hub, tmp_path, where) -> None:
    inbox, _out = hub
    make_submission(inbox / "site01" / NIGHT)
    snapshot = tree(inbox)
    a_file = tmp_path / "hub.txt"
    a_file.write_text("not a folder")
    out = a_file if where == "file" else a_file / "hub"
    result = _cli(inbox, out)
    assert result.exit_code == 2
    assert "not a folder; give the hub's OUT folder" in _one_error_line(result.output)
    assert tree(inbox) == snapshot and a_file.read_text() == "not a folder"


def test_a_manifest_nested_past_the_parsers_depth_is_refused_in_one_line() -> None:
    """json raised RecursionError (a traceback at verify) for 10^5 nested brackets."""
    from cohortpool.transport.manifest import ManifestError, parse_listing

    with pytest.raises(ManifestError, match="not UTF-8 JSON"):
        parse_listing(b"[" * 100_000 + b"]" * 100_000)
