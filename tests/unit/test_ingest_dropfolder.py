"""Finding the site nights of a landing folder that are new or re-delivered."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from cohortpool.ingest import IngestError, dropfolder, mark_processed, scan_landing


def _night(landing: Path, site: str, night: str, files: dict[str, bytes]) -> Path:
    folder = landing / site / night
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def test_new_nights_are_listed_sorted_then_not_again_once_processed(tmp_path: Path) -> None:
    landing, state = tmp_path / "landing", tmp_path / "state"
    _night(landing, "site02", "2024-05-01", {"dicom/a.dcm": b"a", "clinical.csv": b"x"})
    _night(landing, "site01", "2024-05-02", {"dicom/b.dcm": b"b"})
    _night(landing, "site01", "2024-05-01", {"dicom/c.dcm": b"c"})
    pending = scan_landing(landing, state)
    assert [(n.site_id, n.night, n.status) for n in pending] == [
        ("site01", "2024-05-01", "new"),
        ("site01", "2024-05-02", "new"),
        ("site02", "2024-05-01", "new"),
    ]
    assert pending[2].n_files == 2 and pending[2].n_bytes == 2
    mark_processed(pending[0], state)
    assert [(n.site_id, n.night) for n in scan_landing(landing, state)] == [
        ("site01", "2024-05-02"),
        ("site02", "2024-05-01"),
    ]


def test_redelivered_night_with_changed_content_is_taken_again(tmp_path: Path) -> None:
    landing, state = tmp_path / "landing", tmp_path / "state"
    folder = _night(landing, "site01", "2024-05-01", {"dicom/a.dcm": b"a"})
    (first,) = scan_landing(landing, state)
    mark_processed(first, state)
    (folder / "dicom" / "late.dcm").write_bytes(b"arrived later")
    (again,) = scan_landing(landing, state)
    assert again.status == "redelivered"
    assert again.content_sha256 != first.content_sha256
    mark_processed(again, state)
    assert scan_landing(landing, state) == []


def test_same_content_copied_again_is_not_taken_again(tmp_path: Path) -> None:
    landing, state = tmp_path / "landing", tmp_path / "state"
    folder = _night(landing, "site01", "2024-05-01", {"dicom/p/a.dcm": b"a", "reads.csv": b"r"})
    (first,) = scan_landing(landing, state)
    mark_processed(first, state)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    shutil.rmtree(folder)
    time.sleep(0.01)
    shutil.copytree(copy, folder)  # new inodes and timestamps, same bytes
    assert scan_landing(landing, state) == []


def test_renamed_file_counts_as_a_change(tmp_path: Path) -> None:
    landing, state = tmp_path / "landing", tmp_path / "state"
    folder = _night(landing, "site01", "2024-05-01", {"dicom/a.dcm": b"a"})
    mark_processed(scan_landing(landing, state)[0], state)
    (folder / "dicom" / "a.dcm").rename(folder / "dicom" / "b.dcm")
    assert [n.status for n in scan_landing(landing, state)] == ["redelivered"]


def test_in_progress_writes_and_hidden_folders_are_ignored(tmp_path: Path) -> None:
    landing, state = tmp_path / "landing", tmp_path / "state"
    folder = _night(landing, "site01", "2024-05-01", {"dicom/a.dcm": b"a"})
    (first,) = scan_landing(landing, state)
    (folder / "dicom" / ".b.dcm.x1y2.tmp").write_bytes(b"half")
    (landing / ".cohortpool").mkdir()  # the default state folder of `cohortpool fetch`
    (second,) = scan_landing(landing, state)
    assert second.content_sha256 == first.content_sha256
    assert second.n_files == 1


def test_folders_off_the_drop_shape_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    landing, state = tmp_path / "landing", tmp_path / "state"
    _night(landing, "site01", "2024-05-01", {"dicom/a.dcm": b"a"})
    _night(landing, "DOE^JANE_12345", "2024-05-01", {"dicom/a.dcm": b"a"})  # a misplaced export
    _night(landing, "site01", "May 2nd", {"dicom/a.dcm": b"a"})
    (landing / "site01" / "SMITH_clinical.csv").write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="cohortpool.ingest"):
        pending = scan_landing(landing, state)
    assert [(n.site_id, n.night) for n in pending] == [("site01", "2024-05-01")]
    text = caplog.text
    assert f"{landing}/<entry " in text and "not a site id" in text
    assert f"{landing / 'site01'}/<entry " in text and "not a night" in text
    assert "a file where a night" in text
    assert "DOE" not in text and "SMITH" not in text and "May 2nd" not in text  # names can be PHI


def test_processed_night_is_not_read_again_until_its_files_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, state = tmp_path / "landing", tmp_path / "state"
    folder = _night(landing, "site01", "2024-05-01", {"dicom/a.dcm": b"a"})
    mark_processed(scan_landing(landing, state)[0], state)

    def must_not_read(*args: object) -> str:
        raise AssertionError("content of an unchanged, processed night was read again")

    monkeypatch.setattr(dropfolder, "_content_digest", must_not_read)
    assert scan_landing(landing, state) == []
    monkeypatch.undo()
    (folder / "dicom" / "a.dcm").write_bytes(b"b")
    assert [n.status for n in scan_landing(landing, state)] == ["redelivered"]


def test_empty_and_settling_nights_wait(tmp_path: Path) -> None:
    landing, state = tmp_path / "landing", tmp_path / "state"
    (landing / "site01" / "2024-05-01" / "dicom").mkdir(parents=True)
    folder = _night(landing, "site01", "2024-05-02", {"dicom/a.dcm": b"a"})
    assert scan_landing(landing, state, settle_seconds=60) == []
    old = time.time() - 120
    os.utime(folder / "dicom" / "a.dcm", (old, old))
    assert [n.night for n in scan_landing(landing, state, settle_seconds=60)] == ["2024-05-02"]


def test_missing_landing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"landing folder .*nowhere does not exist"):
        scan_landing(tmp_path / "nowhere", tmp_path / "state")


def _bytes_file(folder: Path, name: bytes, data: bytes) -> None:
    """A file whose name is raw bytes (not UTF-8): what a Latin-1 PACS export or a USB stick leaves."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(os.fsencode(folder) + b"/" + name, "wb") as handle:
        handle.write(data)


def test_a_file_name_that_is_not_utf8_is_scanned_with_a_deterministic_checksum(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    _night(landing, "site01", "2024-05-01", {"dicom/a.dcm": b"a"})
    _bytes_file(landing / "site01" / "2024-05-01" / "dicom", b"caf\xe9.dcm", b"latin-1 name")
    _night(landing, "site02", "2024-05-01", {"dicom/b.dcm": b"b"})
    first = scan_landing(landing, tmp_path / "state1")
    assert [(n.site_id, n.n_files) for n in first] == [("site01", 2), ("site02", 1)]
    # the same bytes scanned from scratch give the same checksums (names hashed as their on-disk bytes)
    again = scan_landing(landing, tmp_path / "state2")
    assert [(n.content_sha256, n.stat_sha256) for n in again] == [
        (n.content_sha256, n.stat_sha256) for n in first
    ]
    mark_processed(first[0], tmp_path / "state1")
    assert [n.site_id for n in scan_landing(landing, tmp_path / "state1")] == ["site02"]
    # a different undecodable name is a different delivery
    os.rename(
        os.fsencode(landing / "site01" / "2024-05-01" / "dicom") + b"/caf\xe9.dcm",
        os.fsencode(landing / "site01" / "2024-05-01" / "dicom") + b"/caf\xe8.dcm",
    )
    (changed,) = [n for n in scan_landing(landing, tmp_path / "state1") if n.site_id == "site01"]
    assert changed.status == "redelivered" and changed.content_sha256 != first[0].content_sha256


def test_the_night_checksum_is_the_sha256sum_listing_of_its_files_whatever_the_names(tmp_path: Path) -> None:
    # what an operator can check with coreutils: `sha256sum` lines, names as their bytes on disk
    landing = tmp_path / "landing"
    _night(landing, "site01", "2024-05-01", {"dicom/张伟/a.dcm": b"a", "dicom/b.dcm": b"b"})
    _bytes_file(landing / "site01" / "2024-05-01" / "dicom", b"caf\xe9.dcm", b"c")
    (night,) = scan_landing(landing, tmp_path / "state")
    listing = b"".join(
        hashlib.sha256(data).hexdigest().encode() + b"  " + rel + b"\n"
        for rel, data in (
            (b"dicom/b.dcm", b"b"),
            (b"dicom/caf\xe9.dcm", b"c"),
            ("dicom/张伟/a.dcm".encode(), b"a"),
        )
    )
    assert night.content_sha256 == hashlib.sha256(listing).hexdigest()


def test_folder_names_that_are_not_utf8_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    landing = tmp_path / "landing"
    _night(landing, "site01", "2024-05-01", {"dicom/a.dcm": b"a"})
    os.mkdir(os.fsencode(landing) + b"/M\xfcller")
    os.mkdir(os.fsencode(landing / "site01") + b"/2024-05-\xff")
    with caplog.at_level(logging.WARNING, logger="cohortpool.ingest"):
        pending = scan_landing(landing, tmp_path / "state")
    assert [(n.site_id, n.night) for n in pending] == [("site01", "2024-05-01")]
    assert caplog.text.count("<entry ") == 2


def test_an_unexpected_error_at_one_site_is_reported_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    landing = tmp_path / "landing"
    _night(landing, "site01", "2024-05-01", {"dicom/a.dcm": b"a"})
    _night(landing, "site02", "2024-05-01", {"dicom/b.dcm": b"b"})
    _night(landing, "site03", "2024-05-01", {"dicom/DOE^JANE.dcm": b"c"})
    real = dropfolder._content_digest

    def flaky(night_dir: Path, files: list[Path]) -> str:
        if "site02" in night_dir.parts:
            raise UnicodeEncodeError("utf-8", "DOE^JANE\udce9", 8, 9, "surrogates not allowed")
        return real(night_dir, files)

    monkeypatch.setattr(dropfolder, "_content_digest", flaky)
    with caplog.at_level(logging.ERROR, logger="cohortpool.ingest"):
        scan = dropfolder.scan_sites(landing, tmp_path / "state")
    assert [n.site_id for n in scan.pending] == ["site01", "site03"]
    assert list(scan.failed) == ["site02"]
    reason = scan.failed["site02"]
    assert "UnicodeEncodeError" in reason and "surrogates not allowed" in reason
    assert str(landing / "site02") in reason
    assert "DOE" not in reason and "DOE" not in caplog.text  # the message could carry a patient's name
