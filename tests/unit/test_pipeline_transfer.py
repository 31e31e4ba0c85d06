"""The transport hops the runs use: verify before validating (refused into rejected/), push a site's own
queue, receive an inbox into a PHI-free summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cohortpool.pipeline.hub import find_submissions
from cohortpool.pipeline.transfer import (
    PushFailedError,
    SubmissionRefusedError,
    push_outbox,
    receive_inbox,
    verify_submission,
)
from transport_support import FINGERPRINT, OTHER_FINGERPRINT, make_submission

NIGHT = "2025-03-01"
REGISTRY: dict[str, str | None] = {"site01": FINGERPRINT, "site02": None}


def test_an_intact_submission_passes_and_stays(tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_submission(out / "submissions" / "site01" / NIGHT)
    [submission] = find_submissions(out / "submissions")
    assert verify_submission(submission, REGISTRY, out) == submission
    assert (out / "submissions" / "site01" / NIGHT / "submission.json").is_file()


@pytest.mark.parametrize(
    ("site", "fingerprint", "damage", "check"),
    [
        ("site01", FINGERPRINT, "cut", "size"),
        ("site01", FINGERPRINT, "flip", "sha256"),
        ("site01", FINGERPRINT, "extra", "unlisted"),
        ("site01", OTHER_FINGERPRINT, None, "key_fingerprint"),
        ("site09", FINGERPRINT, None, "site"),
    ],
    ids=["cut", "flipped-byte", "unlisted-file", "other-key", "undeclared-site"],
)
def test_a_failing_submission_is_moved_to_rejected_with_its_reason(
    tmp_path: Path, site: str, fingerprint: str, damage: str | None, check: str
) -> None:
    out = tmp_path / "out"
    folder = make_submission(out / "submissions" / site / NIGHT, site=site, fingerprint=fingerprint)
    [submission] = find_submissions(out / "submissions")
    victim = next(p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "submission.json")
    if damage == "cut":
        victim.write_bytes(victim.read_bytes()[:10])
    elif damage == "flip":
        data = bytearray(victim.read_bytes())
        data[0] ^= 1
        victim.write_bytes(bytes(data))
    elif damage == "extra":
        (folder / "notes.txt").write_text("not listed\n", encoding="utf-8")
    with pytest.raises(SubmissionRefusedError, match=f"{site}/{NIGHT} refused"):
        verify_submission(submission, REGISTRY, out)
    assert not folder.exists()
    reason = json.loads((out / "rejected" / site / NIGHT / "reason.json").read_text(encoding="utf-8"))
    assert reason["problems"][0]["check"] == check


def test_push_takes_only_the_sites_own_queue_and_records_receipts(tmp_path: Path) -> None:
    outbox, inbox = tmp_path / "out" / "submissions", tmp_path / "inbox"
    inbox.mkdir()
    make_submission(outbox / "site01" / NIGHT)
    make_submission(outbox / "site02" / NIGHT, site="site02")
    first = push_outbox(outbox, str(inbox), "site01")
    assert first.pushed == [f"site01/{NIGHT} delivered"] and first.not_pushed == []
    assert [p.parent.name for p in inbox.glob("*/*")] == ["site01"]
    assert (outbox / ".pushed" / "site01" / f"{NIGHT}.json").is_file()
    assert push_outbox(outbox, str(inbox), "site01").pushed == []  # queue empty: nothing again


def test_a_damaged_queued_submission_is_not_pushed_and_says_so(tmp_path: Path) -> None:
    outbox, inbox = tmp_path / "out" / "submissions", tmp_path / "inbox"
    inbox.mkdir()
    folder = make_submission(outbox / "site01" / NIGHT)
    victim = next(p for p in sorted(folder.rglob("*.dcm")))
    victim.write_bytes(victim.read_bytes()[:10])
    with pytest.raises(PushFailedError, match=f"site01/{NIGHT}: refused"):
        push_outbox(outbox, str(inbox), "site01")
    assert not (inbox / "site01").exists()  # never renamed into the hub's view


def test_receive_inbox_sums_up_admitted_and_refused(tmp_path: Path) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    make_submission(inbox / "site01" / NIGHT)
    make_submission(inbox / "site02" / NIGHT, site="site02", fingerprint=OTHER_FINGERPRINT)
    registry = {"site01": FINGERPRINT, "site02": FINGERPRINT}
    summary = receive_inbox(inbox, out, registry)
    assert summary.admitted == [f"site01/{NIGHT}"]
    [(site, night, reason)] = summary.refused
    assert (site, night) == ("site02", NIGHT) and "key_fingerprint" in reason
    assert summary.line() == "1 admitted, 1 refused"
    assert receive_inbox(tmp_path / "no-inbox", out, registry).line() == "0 admitted, 0 refused"
