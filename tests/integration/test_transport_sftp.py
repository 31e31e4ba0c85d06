"""Push over real SFTP (Debian's OpenSSH ``sshd`` on loopback: key-only, ``internal-sftp``, chrooted when
run as root) and receive at the hub: interrupted pushes resume, host keys are checked, damaged or
wrongly keyed submissions are refused with the reason."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd_server import SshServer, keygen, missing_tools, ssh_server, write_known_hosts
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.contract.keys import key_fingerprint
from cohortpool.contract.seal import seal_matches
from cohortpool.synth import write_consortium
from cohortpool.transport import HostKeyError, Pusher, TransientError, opener, receive
from cohortpool.transport.sftp import connect, parse_sftp_url
from transport_support import FINGERPRINT, default_files, make_submission, tree
from transport_support import SECRET as PACKAGED_WITH

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("sshd")]

COHORTPOOL = str(Path(sys.executable).with_name("cohortpool"))
SECRET = "6bb4b7d43f955ba813619aed8918220c55fb109ce78e30dd78d450e60865a7ad"
OTHER_SECRET = "6cea87cff010290dd1da842e458a49dbb59a3dced631be33ae64bc63d521ef0e"
NIGHT = "2025-03-01"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    with ssh_server(tmp_path_factory.mktemp("sshd")) as running:
        yield running


@pytest.fixture
def dest(server: SshServer, request: pytest.FixtureRequest) -> tuple[str, Path]:
    """A fresh folder in the server's inbox for one test: its URL and where it is on this machine."""
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    folder = server.inbox / name
    folder.mkdir()
    return server.url(f"{server.remote_inbox}/{name}"), folder


def _push(server: SshServer, *args: str, known_hosts: Path | None = None, identity: Path | None = None):
    options = [
        "--known-hosts",
        str(known_hosts or server.known_hosts),
        "-i",
        str(identity or server.client_key),
    ]
    return CliRunner().invoke(app, ["push", *options, *args])


@pytest.fixture(scope="module")
def real_submissions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two sites' de-identified submissions made by `cohortpool deid` from a synthetic drop; site02's is
    keyed with another consortium secret (a site with a mistyped key)."""
    root = tmp_path_factory.mktemp("real")
    write_consortium(root / "landing", sites=2, max_patients=2)
    made = {}
    with pytest.MonkeyPatch.context() as env:
        # the key comes from --secret-file alone: COHORTPOOL_SECRET (set by an earlier test of this
        # worker, e.g. the demo's) would take its place
        env.delenv("COHORTPOOL_SECRET", raising=False)
        _deid_both(root, made)
    return made


def _deid_both(root: Path, made: dict[str, Path]) -> None:
    for site, secret in (("site01", SECRET), ("site02", OTHER_SECRET)):
        drop = next((root / "landing" / site).iterdir())
        out = root / "submissions" / site / drop.name
        secret_file = root / f"{site}.secret"
        secret_file.write_text(secret)
        result = CliRunner().invoke(
            app,
            ["deid", str(drop), str(out), "--site", site, "--vault", str(root / "vault" / site),
             "--secret-file", str(secret_file), "--workers", "1"],
        )  # fmt: skip
        assert result.exit_code in (0, 1), result.output
        document = json.loads((out / "submission.json").read_text(encoding="utf-8"))
        assert document["key_fingerprint"] == key_fingerprint(secret.encode())
        assert seal_matches(secret.encode(), document)  # deid seals what it packages
        made[site] = out


def _visible(folder: Path) -> dict[str, str]:
    return {k: v for k, v in tree(folder).items() if not k.startswith(".")}


def test_real_submissions_pushed_over_sftp_are_admitted_or_refused_for_their_key(
    server: SshServer, dest: tuple[str, Path], real_submissions: dict[str, Path], tmp_path: Path
) -> None:
    url, inbox = dest
    pushed = _push(server, str(real_submissions["site01"]), str(real_submissions["site02"]), url)
    assert pushed.exit_code == 0, pushed.output
    night = real_submissions["site01"].name
    assert tree(inbox / "site01" / night) == _visible(real_submissions["site01"])
    assert list((inbox / ".incoming").iterdir()) == []
    out = tmp_path / "hub"
    pinned = {"site01": key_fingerprint(SECRET.encode()), "site02": key_fingerprint(SECRET.encode())}
    arrivals = {a.site: a for a in receive(inbox, out, pinned, secret=SECRET.encode())}
    assert arrivals["site01"].status == "admitted"
    assert tree(out / "submissions" / "site01" / night) == _visible(real_submissions["site01"])
    assert arrivals["site02"].status == "refused"
    reason = json.loads((out / "rejected" / "site02" / night / "reason.json").read_text())
    assert reason["problems"][0]["check"] == "key_fingerprint"
    assert key_fingerprint(OTHER_SECRET.encode()) in reason["reason"]


def test_damage_at_the_hub_is_refused_by_receive_naming_the_file(
    server: SshServer, dest: tuple[str, Path], tmp_path: Path
) -> None:
    url, inbox = dest
    for site in ("site01", "site02"):
        source = make_submission(tmp_path / site, site=site)
        assert _push(server, str(source), url).exit_code == 0
    flipped = inbox / "site01" / NIGHT / "dicom/P0/1.2.0/1.2.3.0.dcm"
    data = bytearray(flipped.read_bytes())
    data[7] ^= 0x80
    flipped.write_bytes(bytes(data))
    truncated = inbox / "site02" / NIGHT / "clinical.csv"
    truncated.write_bytes(truncated.read_bytes()[:10])
    out = tmp_path / "hub"
    registry: dict[str, str | None] = {"site01": None, "site02": None}
    arrivals = {a.site: a for a in receive(inbox, out, registry, secret=PACKAGED_WITH)}
    assert arrivals["site01"].problems[0].check == "sha256"
    assert "dicom/P0/1.2.0/1.2.3.0.dcm" in arrivals["site01"].reason
    assert arrivals["site02"].problems[0].check == "size" and "clinical.csv" in arrivals["site02"].reason
    assert sorted(p.name for p in (out / "rejected").iterdir()) == ["site01", "site02"]


def test_same_push_again_changes_nothing_and_a_second_receive_changes_nothing(
    server: SshServer, dest: tuple[str, Path], tmp_path: Path
) -> None:
    url, inbox = dest
    source = make_submission(tmp_path / "sub")
    assert _push(server, str(source), url).exit_code == 0
    stamps = {p: p.stat().st_mtime_ns for p in inbox.rglob("*")}
    again = _push(server, str(source), url)
    assert again.exit_code == 0 and again.output.startswith("unchanged site01/2025-03-01")
    assert {p: p.stat().st_mtime_ns for p in inbox.rglob("*")} == stamps
    out = tmp_path / "hub"
    assert [a.status for a in receive(inbox, out, {"site01": FINGERPRINT}, secret=PACKAGED_WITH)] == [
        "admitted"
    ]
    snapshot = tree(out)
    assert receive(inbox, out, {"site01": FINGERPRINT}, secret=PACKAGED_WITH) == []
    assert tree(out) == snapshot


def test_a_changed_night_replaces_the_delivered_one_whole(
    server: SshServer, dest: tuple[str, Path], tmp_path: Path
) -> None:
    url, inbox = dest
    source = make_submission(tmp_path / "sub")
    assert _push(server, str(source), url).exit_code == 0
    (source / "dicom/P1/1.2.1/1.2.3.1.dcm").unlink()
    make_submission(source, files={"reads.csv": b"site_id,patient_id,level\nsite01,P1,T12\n"})
    again = _push(server, str(source), url)
    assert again.exit_code == 0 and again.output.startswith("replaced site01/2025-03-01"), again.output
    assert tree(inbox / "site01" / NIGHT) == _visible(source)
    assert list((inbox / ".incoming").iterdir()) == []


@pytest.mark.parametrize("target", ["submissions/site02", ""], ids=["other-sites-nights", "the-hubs-out"])
def test_a_site_link_over_sftp_is_not_followed(
    server: SshServer, dest: tuple[str, Path], tmp_path: Path, target: str
) -> None:
    """The attack of a site on its own SFTP area: rename its folder away and make a link in its place to
    another site's admitted nights (or the hub's OUT); receive leaves the link and moves nothing."""
    url, inbox = dest
    registry: dict[str, str | None] = {"site01": None, "site02": None}
    out = tmp_path / "hub"
    for site in ("site02", "site01"):
        assert _push(server, str(make_submission(tmp_path / site, site=site)), url).exit_code == 0
        if site == "site02":
            assert [a.status for a in receive(inbox, out, registry, secret=PACKAGED_WITH)] == ["admitted"]
    before = tree(out)
    aim = str(out / target) if target else str(out)
    with connect(parse_sftp_url(url), [server.known_hosts], server.client_key) as site01:
        remote = site01.url.path
        site01._sftp.rename(f"{remote}/site01", f"{remote}/.site01-away")
        site01._sftp.symlink(aim, f"{remote}/site01")
    assert (inbox / "site01").is_symlink() and str((inbox / "site01").readlink()) == aim
    [arrival] = receive(inbox, out, registry, secret=PACKAGED_WITH)
    assert (arrival.site, arrival.status, arrival.problems[0].check) == ("site01", "ignored", "link")
    assert "the hub's OUT" in arrival.reason and "removes the link" in arrival.reason
    assert tree(out) == before
    assert (inbox / "site01").is_symlink() and (inbox / ".site01-away" / NIGHT / "submission.json").is_file()


def test_push_killed_mid_way_leaves_nothing_visible_and_resumes(
    server: SshServer, dest: tuple[str, Path], tmp_path: Path
) -> None:
    url, inbox = dest
    source = make_submission(tmp_path / "sub", files=default_files(count=1500, size=24_000))
    command = [COHORTPOOL, "push", "--known-hosts", str(server.known_hosts), "-i", str(server.client_key),
               str(source), url]  # fmt: skip
    partial = inbox / ".incoming" / f"site01-{NIGHT}.partial"
    with (tmp_path / "push.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                if partial.is_dir() and sum(1 for _ in partial.glob("dicom/*/*/*.dcm")) >= 100:
                    break
                time.sleep(0.02)
            assert process.poll() is None, "the push ended before it could be killed: give it more files"
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=30)
    assert not (inbox / "site01").exists()  # the hub sees nothing of a half-pushed night
    assert receive(inbox, tmp_path / "early", {"site01": FINGERPRINT}, secret=PACKAGED_WITH) == []
    resumed = _push(server, str(source), url)
    assert resumed.exit_code == 0, resumed.output
    assert "there from an interrupted push" in resumed.output
    sent = int(resumed.output.split(": ", 1)[1].split(" files")[0])
    assert 0 < sent < 1500
    assert tree(inbox / "site01" / NIGHT) == _visible(source)


def test_dropped_connection_is_reconnected_and_resumed_within_the_budget(
    server: SshServer, dest: tuple[str, Path], tmp_path: Path
) -> None:
    url, inbox = dest
    source = make_submission(tmp_path / "sub", files=default_files(count=200, size=50_000))
    dropped: list[int] = []
    retries: list[str] = []

    def drop_once(count: int) -> None:
        if not dropped and sum(p.stat().st_size for p in (inbox / ".incoming").rglob("*.dcm")) > 2_000_000:
            dropped.extend(server.sessions())
            for pid in dropped:  # the sshd processes serving this connection, children of our sshd
                subprocess.run(["kill", "-KILL", str(pid)], check=False)

    pusher = Pusher(
        opener(url, [server.known_hosts], server.client_key), 60, on_retry=lambda e, w: retries.append(str(e))
    )
    try:
        result = pusher.push(source, on_bytes=drop_once)
    finally:
        pusher.close()
    assert dropped and retries, "the connection was never dropped"
    assert result.status == "delivered" and result.files_resumed > 0
    assert tree(inbox / "site01" / NIGHT) == _visible(source)


def test_unknown_host_key_is_refused_with_one_line_and_nothing_written(
    server: SshServer, dest: tuple[str, Path], tmp_path: Path
) -> None:
    url, inbox = dest
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = _push(server, str(make_submission(tmp_path / "sub")), url, known_hosts=empty)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "is not in" in lines[0] and "refused" in lines[0], result.output
    assert f"[127.0.0.1]:{server.port}" in lines[0]
    assert list(inbox.iterdir()) == []


def test_changed_host_key_is_refused_with_one_line(
    server: SshServer, dest: tuple[str, Path], tmp_path: Path
) -> None:
    url, inbox = dest
    other = keygen(tmp_path / "other_host_key")
    changed = tmp_path / "known_hosts"
    write_known_hosts(changed, server.port, other)
    result = _push(server, str(make_submission(tmp_path / "sub")), url, known_hosts=changed)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "CHANGED" in lines[0], result.output
    assert list(inbox.iterdir()) == []
    with pytest.raises(HostKeyError):  # the library refuses as well, and never adds the key
        opener(url, [changed], server.client_key)()
    assert changed.read_text().count("\n") == 1


def test_a_key_the_hub_does_not_know_is_refused(
    server: SshServer, dest: tuple[str, Path], tmp_path: Path
) -> None:
    url, _inbox = dest
    stranger = keygen(tmp_path / "stranger")
    result = _push(server, str(make_submission(tmp_path / "sub")), url, identity=stranger)
    assert result.exit_code == 2 and "login refused" in result.output, result.output


def test_outbox_keeps_what_the_hub_did_not_get_and_pushes_it_on_the_next_run(
    server: SshServer, dest: tuple[str, Path], tmp_path: Path
) -> None:
    url, inbox = dest
    outbox = tmp_path / "submissions"
    make_submission(outbox / "site01" / NIGHT)
    down = f"sftp://{server.user}@127.0.0.1:1{server.remote_inbox}"  # nothing listens on port 1
    offline = _push(server, "--outbox", str(outbox), "--budget-minutes", "0", down)
    assert offline.exit_code == 3 and "stays queued" in offline.output, offline.output
    assert not (outbox / ".pushed" / "site01" / f"{NIGHT}.json").exists()
    online = _push(server, "--outbox", str(outbox), url)
    assert online.exit_code == 0 and f"delivered site01/{NIGHT}" in online.output, online.output
    assert tree(inbox / "site01" / NIGHT) == _visible(outbox / "site01" / NIGHT)


def test_the_login_is_chrooted(server: SshServer, tmp_path: Path) -> None:
    if not server.chrooted:
        pytest.skip("sshd can chroot only when started as root (CI runs as root)")
    outside = server.url("/etc")  # /etc exists on this machine, not inside the chroot
    result = _push(server, str(make_submission(tmp_path / "sub")), outside)
    assert result.exit_code == 2 and "no such folder on the server" in result.output, result.output
    assert server.root != Path("/") and server.root.stat().st_uid == 0


def test_a_write_the_server_refuses_is_never_taken_for_delivered(tmp_path: Path) -> None:
    """The pipelined writer checks every reply: a server that refuses every WRITE (as a full disk would
    fail them) leaves nothing delivered, and the push says so."""
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    with ssh_server(tmp_path / "sshd", sftp_options="-P write") as refusing:
        source = make_submission(tmp_path / "sub")
        url = refusing.url()
        pusher = Pusher(opener(url, [refusing.known_hosts], refusing.client_key), 0)
        try:
            with pytest.raises(TransientError, match="refused a write"):
                pusher.push(source)
        finally:
            pusher.close()
        assert not (refusing.inbox / "site01").exists()
        assert [p for p in refusing.inbox.rglob("*") if p.is_file() and p.stat().st_size] == []
