"""One unusable instance in a real Orthanc must not pin `cohortpool fetch`: it is refused once, recorded,
named without PHI, and the watermark moves past it; a PACS that fails still keeps the watermark (exit 3).

The bad instance is sent with dcmtk's ``storescu`` as a modality would send it: its SOPInstanceUID holds a
patient's name and record number (invalid as a UID; Orthanc stores it anyway). Before the change, every
night exited 1, re-listed everything from the first study, and a DICOMweb message quoted the "UID".
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from pathlib import Path

import httpx
import pydicom
import pytest
from orthanc_server import OrthancServer
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.ingest.state import STATE_FILE
from ingest_testdata import HOSTILE_PHI, HOSTILE_UID, write_hostile_instance, write_study

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("orthanc")]


def _fetch(url: str, landing: Path, state: Path, night: str, *extra: str) -> tuple[int, str]:
    out = CliRunner().invoke(
        app, ["fetch", url, "--landing", str(landing), "--site", "site01", "--state-dir", str(state),
              "--night", night, *extra],
    )  # fmt: skip
    return out.exit_code, out.output


def _landed(landing: Path, night: str) -> set[str]:
    folder = landing / "site01" / night / "dicom"
    return {p.stem for p in folder.rglob("*.dcm")} if folder.exists() else set()


def _sops(files: list[Path]) -> set[str]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}


def _db(state: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(state / STATE_FILE) as conn:
        return conn.execute(query).fetchall()


def _study_with_a_bad_instance(
    tmp_path: Path, tag: str, study_date: str = "20240105"
) -> tuple[str, list[Path], Path]:
    """A CT study of two good instances and one whose SOPInstanceUID holds PHI."""
    uid, good = write_study(tmp_path / "export", "CT", 2, study_date=study_date, tag=tag)
    series = str(pydicom.dcmread(good[0], stop_before_pixels=True).SeriesInstanceUID)
    bad = write_hostile_instance(tmp_path / "export" / f"{tag}_bad.dcm", uid, series, study_date=study_date)
    return uid, good, bad


def _last_change(orthanc: OrthancServer) -> int:
    return int(httpx.get(f"{orthanc.url}/changes", params={"last": ""}, timeout=10).json()["Last"])


def _delete(orthanc: OrthancServer, instance_id: str) -> None:
    httpx.delete(f"{orthanc.url}/instances/{instance_id}", timeout=10).raise_for_status()


def _no_phi(*texts: str) -> None:
    for text in texts:
        for part in HOSTILE_PHI:
            assert part not in text, text


def _names(*folders: Path) -> str:
    return "\n".join(str(p) for folder in folders for p in folder.rglob("*"))


def test_a_bad_instance_is_refused_once_and_the_watermark_moves_past_it(
    orthanc: OrthancServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    orthanc.clear()
    landing, state = tmp_path / "landing", tmp_path / "state"
    first_uid, first = write_study(tmp_path / "export", "MR", 2, tag="first")
    bad_uid, good, bad = _study_with_a_bad_instance(tmp_path, "mixed")
    orthanc.push([*first, *good, bad])
    orthanc.wait_stable([first_uid, bad_uid])
    bad_id = orthanc.instance_ids(bad_uid)[HOSTILE_UID]

    # night 1: every good instance lands (the bad one's study-mates too); the bad one is refused by its
    # Orthanc id with what is wrong and what to do; exit 1 (done, input refused); the watermark moves
    code, output = _fetch(orthanc.url, landing, state, "2024-05-01")
    assert code == 1, output
    assert _landed(landing, "2024-05-01") == _sops(first + good)
    assert "4 instances written" in output and "1 refused" in output
    assert (
        f"refused {orthanc.url}/instances/{bad_id}/file: SOPInstanceUID is missing or not a valid UID"
        in output
    )
    assert "fix or delete the instance at the PACS, then run `cohortpool fetch --retry-refused`" in output
    (watermark,) = _db(state, "select value from watermarks")
    assert watermark[0] == str(_last_change(orthanc))
    (row,) = _db(state, "select name, reason, night from refused_instances")
    assert row[0] == f"{orthanc.url}/instances/{bad_id}/file" and row[2] == "2024-05-01"
    assert "not a valid UID" in str(row[1])

    # night 2: nothing new; the refusal is not repeated; exit 0
    code, output = _fetch(orthanc.url, landing, state, "2024-05-02")
    assert code == 0, output
    assert "0 studies changed" in output and "refused http" not in output
    assert not (landing / "site01" / "2024-05-02").exists()

    # night 3: a new study after the bad one arrives, and only it
    new_uid, new = write_study(tmp_path / "export", "CR", 1, tag="new")
    orthanc.push(new)
    orthanc.wait_stable([new_uid])
    code, output = _fetch(orthanc.url, landing, state, "2024-05-03")
    assert code == 0, output
    assert _landed(landing, "2024-05-03") == _sops(new)

    # the PACS's staff fix it: delete the bad instance, send a corrected one; Orthanc's change log has
    # the study again, so the next night fetches it and the refusal is forgotten
    _delete(orthanc, bad_id)
    fixed = write_hostile_instance(
        tmp_path / "export" / "fixed.dcm", bad_uid, str(pydicom.dcmread(good[0]).SeriesInstanceUID),
        sop_uid=pydicom.uid.generate_uid(),
    )  # fmt: skip
    orthanc.push([fixed])
    orthanc.wait_stable([bad_uid])
    code, output = _fetch(orthanc.url, landing, state, "2024-05-04")
    assert code == 0, output
    assert _landed(landing, "2024-05-04") == _sops([fixed])
    assert _db(state, "select count(*) from refused_instances") == [(0,)]

    # no patient name or record number in any message, log record or file name of the landing or state
    _no_phi(output, caplog.text, _names(landing, state))


def test_dicomweb_refusal_names_no_phi_and_retry_refused_fetches_the_fixed_instance(
    orthanc: OrthancServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    orthanc.clear()
    landing, state = tmp_path / "landing", tmp_path / "state"
    dicomweb = f"{orthanc.url}/dicom-web"
    # an archive study (old StudyDate): after the first night it is outside the QIDO-RS window
    bad_uid, good, bad = _study_with_a_bad_instance(tmp_path, "old", study_date="20230301")
    orthanc.push([*good, bad])
    outputs = []

    code, output = _fetch(dicomweb, landing, state, "2024-05-01")
    outputs.append(output)
    assert code == 1, output
    assert _landed(landing, "2024-05-01") == _sops(good)
    assert "refused http://127.0.0.1:" in output and "/dicom-web/studies/uid-" in output
    assert "/instances/uid-" in output and "not a valid UID" in output
    assert _db(state, "select count(*) from watermarks") == [(1,)]

    # the refused bytes met again (a --full pass): skipped, not refused anew
    code, output = _fetch(dicomweb, landing, state, "2024-05-02", "--full")
    outputs.append(output)
    assert code == 0, output
    assert "0 refused, 1 refused before and unchanged (skipped)" in output

    # fixed at the PACS (deleted, sent again with a valid UID): outside the date window a normal night does
    # not see it; --retry-refused lists the studies of the refusals again and fetches it
    _delete(orthanc, orthanc.instance_ids(bad_uid)[HOSTILE_UID])
    fixed_sop = pydicom.uid.generate_uid()
    fixed = write_hostile_instance(
        tmp_path / "export" / "fixed.dcm", bad_uid, str(pydicom.dcmread(good[0]).SeriesInstanceUID),
        sop_uid=fixed_sop, study_date="20230301",
    )  # fmt: skip
    orthanc.push([fixed])
    code, output = _fetch(dicomweb, landing, state, "2024-05-03")
    outputs.append(output)
    assert code == 0 and _landed(landing, "2024-05-03") == set(), output
    code, output = _fetch(dicomweb, landing, state, "2024-05-04", "--retry-refused")
    outputs.append(output)
    assert code == 0, output
    assert _landed(landing, "2024-05-04") == {fixed_sop}
    assert _db(state, "select count(*) from refused_instances") == [(0,)]
    _no_phi(*outputs, caplog.text, _names(landing, state))


def test_dicomweb_instance_the_pacs_cannot_serve_by_its_listed_uid_is_refused_not_retried_forever(
    orthanc: OrthancServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Orthanc lists "1.2.840.DOE/JANE.MRN0001" (or "..") but answers 404 (or the whole series) for the
    URL made of it: no retry helps, so it is refused, not a PACS failure that keeps the watermark."""
    caplog.set_level(logging.DEBUG)
    orthanc.clear()
    landing, state = tmp_path / "landing", tmp_path / "state"
    dicomweb = f"{orthanc.url}/dicom-web"
    today = dt.date.today().strftime("%Y%m%d")  # inside the QIDO-RS window of the next nights
    uid, good = write_study(tmp_path / "export", "CT", 2, study_date=today, tag="s")
    series = str(pydicom.dcmread(good[0], stop_before_pixels=True).SeriesInstanceUID)
    slash, dots = (
        write_hostile_instance(
            tmp_path / "export" / f"{name}.dcm", uid, series, sop_uid=sop, study_date=today
        )
        for name, sop in (("slash", "1.2.840.DOE/JANE.MRN0001"), ("dots", ".."))
    )
    orthanc.push([*good, slash, dots])

    code, first = _fetch(dicomweb, landing, state, "2024-05-01")
    assert code == 1, first
    assert _landed(landing, "2024-05-01") == _sops(good)
    assert (
        first.count("the PACS lists it with a Study, Series or SOP Instance UID that is not a valid UID") == 2
    )
    assert "failed:" not in first and _db(state, "select count(*) from watermarks") == [(1,)]

    code, second = _fetch(dicomweb, landing, state, "2024-05-02")  # the same study, inside the window
    assert code == 0, second
    assert "0 refused, 2 refused before and unchanged (skipped)" in second
    _no_phi(first, second, caplog.text, _names(landing, state))


def test_a_pacs_that_fails_an_instance_keeps_the_watermark_and_exits_3(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    """The PACS's fault, not the instance's: nothing is refused, the next run retries and gets it."""
    orthanc.clear()
    landing, state = tmp_path / "landing", tmp_path / "state"
    uid, files = write_study(tmp_path / "export", "CT", 3, tag="t")
    orthanc.push(files)
    orthanc.wait_stable([uid])
    ids = orthanc.instance_ids(uid)
    broken_sop = sorted(ids)[0]
    stored = orthanc.stored_file(ids[broken_sop])
    aside = tmp_path / "aside"
    stored.rename(aside)  # Orthanc answers 500 for it: its storage lost the file

    code, output = _fetch(orthanc.url, landing, state, "2024-05-01")
    assert code == 3, output
    assert f"GET {orthanc.url}/instances/{ids[broken_sop]}/file failed after 4 attempts (HTTP 500)" in output
    assert "the watermark was not moved" in output
    assert _landed(landing, "2024-05-01") == set(ids) - {broken_sop}
    assert _db(state, "select count(*) from watermarks") == [(0,)]
    assert _db(state, "select count(*) from refused_instances") == [(0,)]

    aside.rename(stored)  # the PACS is repaired: the next run takes only what is missing
    code, output = _fetch(orthanc.url, landing, state, "2024-05-02")
    assert code == 0, output
    assert _landed(landing, "2024-05-02") == {broken_sop}
    assert _db(state, "select count(*) from watermarks") == [(1,)]
