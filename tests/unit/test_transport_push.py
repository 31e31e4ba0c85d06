"""`push` to a local folder: the hub sees all of a submission or nothing; resumable, idempotent, retried."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.transport import (
    LocalDestination,
    Pusher,
    SubmissionDamagedError,
    TransientError,
    push_submission,
)
from cohortpool.transport.push import INCOMING
from transport_support import make_submission, tree

FINAL = "site01/2025-03-01"
PARTIAL = f"{INCOMING}/site01-2025-03-01.partial"


def _visible(folder: Path) -> dict[str, str]:
    return {k: v for k, v in tree(folder).items() if not k.startswith(".")}


class Interrupted(BaseException):
    """Stands for the process dying mid-transfer (raised from the progress callback)."""


def _interrupt_after(limit: int):
    sent = 0

    def on_bytes(count: int) -> None:
        nonlocal sent
        sent += count
        if sent > limit:
            raise Interrupted

    return on_bytes


def test_push_delivers_the_whole_submission_at_site_night_and_leaves_nothing_behind(tmp_path: Path) -> None:
    source = make_submission(tmp_path / "sub")
    dest = tmp_path / "hub"
    dest.mkdir()
    result = push_submission(source, LocalDestination(dest))
    assert result.status == "delivered"
    assert tree(dest / FINAL) == _visible(source)
    assert list((dest / INCOMING).iterdir()) == []
    assert result.files_sent == len(json.loads((source / "submission.json").read_text())["files"])


def test_same_content_pushed_again_changes_nothing(tmp_path: Path) -> None:
    source = make_submission(tmp_path / "sub")
    dest = tmp_path / "hub"
    dest.mkdir()
    push_submission(source, LocalDestination(dest))
    before = {p: p.stat().st_mtime_ns for p in (dest / FINAL).rglob("*")}
    again = push_submission(source, LocalDestination(dest))
    assert (again.status, again.files_sent, again.bytes_sent) == ("unchanged", 0, 0)
    assert {p: p.stat().st_mtime_ns for p in (dest / FINAL).rglob("*")} == before


def test_changed_redelivery_replaces_the_old_one_whole(tmp_path: Path) -> None:
    source = make_submission(tmp_path / "sub")
    dest = tmp_path / "hub"
    dest.mkdir()
    push_submission(source, LocalDestination(dest))
    (source / "dicom/P1/1.2.1/1.2.3.1.dcm").unlink()
    (source / "clinical.csv").write_bytes(b"site_id,patient_id\nsite01,P00000000000000FF\n")
    make_submission(source, files={})  # repackage what is there now
    result = push_submission(source, LocalDestination(dest))
    assert result.status == "replaced"
    assert tree(dest / FINAL) == _visible(source)
    assert not (dest / FINAL / "dicom/P1/1.2.1/1.2.3.1.dcm").exists()
    assert list((dest / INCOMING).iterdir()) == []


def test_interrupted_push_shows_nothing_and_resumes_without_resending_complete_files(tmp_path: Path) -> None:
    source = make_submission(tmp_path / "sub")
    dest = tmp_path / "hub"
    dest.mkdir()
    with pytest.raises(Interrupted):
        push_submission(source, LocalDestination(dest), on_bytes=_interrupt_after(150_000))
    assert not (dest / "site01").exists()  # the hub sees nothing yet
    done = [p for p in (dest / PARTIAL).rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert done, "the interrupted push completed no file: interrupt later"
    result = push_submission(source, LocalDestination(dest))
    assert result.status == "delivered"
    assert result.files_resumed == len(done)
    assert result.files_sent + result.files_resumed == len(
        json.loads((source / "submission.json").read_text())["files"]
    )
    assert tree(dest / FINAL) == _visible(source)


def test_resume_after_the_site_rebuilt_the_night_keeps_only_files_that_did_not_change(tmp_path: Path) -> None:
    source = make_submission(tmp_path / "sub")
    dest = tmp_path / "hub"
    dest.mkdir()
    with pytest.raises(Interrupted):
        push_submission(source, LocalDestination(dest), on_bytes=_interrupt_after(150_000))
    partial_files = {
        p.relative_to(dest / PARTIAL).as_posix() for p in (dest / PARTIAL).rglob("*") if p.is_file()
    }
    changed = sorted(f for f in partial_files if not f.split("/")[-1].startswith("."))[0]
    (source / changed).write_bytes(b"rebuilt with other content")
    make_submission(source, files={})
    result = push_submission(source, LocalDestination(dest))
    assert tree(dest / FINAL) == _visible(source)
    assert (dest / FINAL / changed).read_bytes() == b"rebuilt with other content"
    assert result.files_resumed >= 1


def test_a_site_file_that_no_longer_matches_submission_json_never_reaches_the_hub(tmp_path: Path) -> None:
    source = make_submission(tmp_path / "sub")
    damaged = source / "dicom/P0/1.2.0/1.2.3.0.dcm"
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    dest = tmp_path / "hub"
    dest.mkdir()
    with pytest.raises(SubmissionDamagedError, match=r"dicom/P0/1\.2\.0/1\.2\.3\.0\.dcm"):
        push_submission(source, LocalDestination(dest))
    assert not (dest / "site01").exists()
    result = CliRunner().invoke(app, ["push", str(source), str(dest)])
    assert result.exit_code == 1, result.output
    assert "refused" in result.output and "1.2.3.0.dcm" in result.output


def test_transient_failures_are_retried_with_growing_waits_until_the_budget_is_spent(tmp_path: Path) -> None:
    source = make_submission(tmp_path / "sub")
    dest = tmp_path / "hub"
    dest.mkdir()
    now = [0.0]
    waits: list[float] = []
    failures = [3]

    def flaky_open() -> LocalDestination:
        if failures[0]:
            failures[0] -= 1
            raise TransientError("hub unreachable")
        return LocalDestination(dest)

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pusher = Pusher(flaky_open, budget_seconds=100, sleep=sleep, clock=lambda: now[0])
    assert pusher.push(source).status == "delivered"
    assert waits == [1.0, 2.0, 4.0]

    failures[0] = 10**6
    pusher = Pusher(flaky_open, budget_seconds=10, sleep=sleep, clock=lambda: now[0])
    waits.clear()
    with pytest.raises(TransientError):
        pusher.push(source)
    assert sum(waits) == pytest.approx(10.0)  # 1 + 2 + 4 + the 3 s left


def test_cli_pushes_the_outbox_queue_oldest_first_and_records_receipts(tmp_path: Path) -> None:
    outbox = tmp_path / "submissions"
    make_submission(outbox / "site01" / "2025-03-02", night="2025-03-02")
    make_submission(outbox / "site01" / "2025-03-01", night="2025-03-01")
    (outbox / "site01" / "2025-03-03").mkdir()  # being written: no submission.json yet
    dest = tmp_path / "hub"
    dest.mkdir()
    first = CliRunner().invoke(app, ["push", "--outbox", str(outbox), str(dest)])
    assert first.exit_code == 0, first.output
    lines = [line for line in first.output.splitlines() if line.startswith("delivered")]
    assert [line.split()[1] for line in lines] == ["site01/2025-03-01", "site01/2025-03-02"]
    assert (outbox / ".pushed" / "site01" / "2025-03-01.json").is_file()
    second = CliRunner().invoke(app, ["push", "--outbox", str(outbox), str(dest)])
    assert second.exit_code == 0 and "nothing to push" in second.output
    # the night is rebuilt with other content: it is queued again and replaces the hub's copy
    make_submission(outbox / "site01" / "2025-03-01", night="2025-03-01", files={"extra.csv": b"a\n"})
    third = CliRunner().invoke(app, ["push", "--outbox", str(outbox), str(dest)])
    assert third.exit_code == 0, third.output
    assert "replaced site01/2025-03-01" in third.output and "2025-03-02" not in third.output
    assert (dest / "site01" / "2025-03-01" / "extra.csv").read_bytes() == b"a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "DEST"),
        (["{dest}"], "nothing to push"),
        (["{empty}", "{dest}"], "submission.json"),
        (["{sub}", "sftp://hub.example.org/inbox"], "no user"),
        (["{sub}", "sftp://u:pw@hub.example.org/inbox"], "passwords"),
        (["{sub}", "{missing}"], "no such folder"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    sub = make_submission(tmp_path / "sub")
    (tmp_path / "empty").mkdir()
    (tmp_path / "dest").mkdir()
    names = {"sub": sub, "empty": tmp_path / "empty", "dest": tmp_path / "dest", "missing": tmp_path / "nope"}
    result = CliRunner().invoke(app, ["push", *(a.format(**names) for a in args)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not os.path.exists(tmp_path / "nope")
