"""Atomic writes and UID-built names of ingested instances."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from cohortpool.ingest.errors import InvalidInstanceError
from cohortpool.ingest.store import (
    InstanceUids,
    check_night,
    check_site_id,
    instance_path,
    is_in_progress,
    uids_of,
    write_atomic,
)
from ingest_testdata import make_instance


def _encoded(**overrides: str) -> bytes:
    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), modality="CT", number=1)
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_write_atomic_leaves_only_the_final_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "x.dcm"
    digest = write_atomic(target, b"payload")
    assert target.read_bytes() == b"payload"
    assert len(digest) == 64
    assert [p.name for p in target.parent.iterdir()] == ["x.dcm"]


def test_write_atomic_replaces_an_existing_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "x.dcm"
    write_atomic(target, b"old content that is longer")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"


def test_write_atomic_failure_removes_temp_and_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x.dcm"
    write_atomic(target, b"complete")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"half")
    assert target.read_bytes() == b"complete"
    assert [p.name for p in tmp_path.iterdir()] == ["x.dcm"]


def test_uids_of_reads_the_three_uids() -> None:
    data = _encoded()
    uids = uids_of(data, "test")
    assert uids.sop_instance and uids.series and uids.study
    assert uids.study != uids.series


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
@pytest.mark.parametrize("bad", ["../../etc/passwd", "1.2.3/../../x", "", "1.2." + "3" * 70])
def test_uids_of_refuses_uids_unusable_as_names(bad: str) -> None:
    with pytest.raises(InvalidInstanceError, match="SOPInstanceUID"):
        uids_of(_encoded(SOPInstanceUID=bad), "C-STORE from AE 'X'")


def test_uids_of_names_the_origin_of_unreadable_bytes() -> None:
    with pytest.raises(InvalidInstanceError, match=r"http://pacs/x: not a readable DICOM"):
        uids_of(b"this is not DICOM", "http://pacs/x")


def test_instance_path_follows_the_site_drop_shape(tmp_path: Path) -> None:
    path = instance_path(tmp_path, "site01", "2024-05-01", InstanceUids("1.2.3", "1.2.3.4", "1.2.3.4.5"))
    assert path == tmp_path / "site01" / "2024-05-01" / "dicom" / "1.2.3" / "1.2.3.4" / "1.2.3.4.5.dcm"


def test_site_and_night_names_are_checked() -> None:
    with pytest.raises(ValueError, match="site id"):
        check_site_id("../evil")
    with pytest.raises(ValueError, match="not a calendar date"):
        check_night("2024-02-30")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        check_night("20240201")


def test_temp_files_of_atomic_writes_are_recognised() -> None:
    assert is_in_progress(Path(".x.dcm.abc123.tmp"))
    assert not is_in_progress(Path("x.dcm"))


def test_a_uid_holding_a_name_is_refused_without_pydicom_repeating_it(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The listener and fetch read UIDs with pydicom, whose warning ("Invalid value for VR UI: '...'")
    put the value on the terminal before cohortpool's own line, which names none."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # building the planted instance warns too
        data = _encoded(StudyInstanceUID="SMITH^JOHN 19500101")
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")  # what a terminal would have shown
        with pytest.raises(InvalidInstanceError) as refused:
            uids_of(data, "the association from SENDER")
    out, err = capfd.readouterr()
    assert [str(w.message) for w in shown] == []
    assert "SMITH" not in out + err + str(refused.value)
    assert "StudyInstanceUID is missing or not a valid UID" in str(refused.value)
