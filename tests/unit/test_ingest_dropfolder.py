"""Finding the site nights of a landing folder that are new or re-delivered."""

from __future__ import annotations

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
