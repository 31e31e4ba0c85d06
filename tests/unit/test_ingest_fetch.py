"""The fetch loop: watermark moves only when the source failed nothing, the ledger writes an instance once,
an unusable instance is refused once and recorded.

The source here is a small in-memory implementation of the ``Source`` protocol (the real Orthanc and
DICOMweb sources are exercised against a real Orthanc in tests/integration/test_ingest_orthanc.py);
it lets the tests inject a failure and a vanished study, which a healthy Orthanc will not produce.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from cohortpool.ingest import state
from cohortpool.ingest.errors import SourceError
from cohortpool.ingest.fetch import fetch_from_source
from cohortpool.ingest.source import Discovery, InstanceRef, StudyRef
from ingest_testdata import make_instance


class MemorySource:
    """Studies held in memory; the change log is the list index, like Orthanc's sequence numbers."""

    key = "memory:test"

    def __init__(self) -> None:
        self.log: list[str] = []  # study keys in order of change
        self.studies: dict[str, dict[str, bytes]] = {}
        self.broken: set[str] = set()  # SOP instance UIDs whose retrieval fails
        self.retrieved = 0

    def add_study(self, n: int) -> tuple[str, list[str]]:
        study_uid, series_uid = generate_uid(), generate_uid()
        files = {}
        for i in range(n):
            ds = make_instance(study_uid=study_uid, series_uid=series_uid, modality="CT", number=i + 1)
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            files[str(ds.SOPInstanceUID)] = buffer.getvalue()
        self.studies[study_uid] = files
        self.log.append(study_uid)
        return study_uid, list(files)

    def discover(self, watermark: str | None, *, full: bool) -> Discovery:
        start = 0 if full or watermark is None else int(watermark)
        keys = list(dict.fromkeys(self.log[start:]))
        return Discovery([StudyRef(k) for k in keys], str(len(self.log)))

    def instances(self, study: StudyRef) -> list[InstanceRef] | None:
        if study.key not in self.studies:
            return None
        return [InstanceRef(sop, f"/{study.key}/{sop}") for sop in self.studies[study.key]]

    def retrieve(self, instance: InstanceRef) -> bytes:
        study, sop = instance.locator.strip("/").split("/")
        if sop in self.broken:
            raise SourceError(f"GET memory{instance.locator} failed after 4 attempts")
        self.retrieved += 1
        return self.studies[study][sop]


def _landed(landing: Path) -> dict[str, Path]:
    return {p.stem: p for p in landing.rglob("*.dcm")}


def test_first_run_fetches_all_then_nothing_then_only_the_new_study(tmp_path: Path) -> None:
    source, landing, state = MemorySource(), tmp_path / "landing", tmp_path / "state"
    first_study, first_sops = source.add_study(3)
    r1 = fetch_from_source(source, landing, "site01", state, night="2024-05-01", fsync=False)
    assert (r1.studies_found, r1.studies_fetched, r1.instances_written) == (1, 1, 3)
    assert r1.watermark_before is None and r1.watermark_after == "1" and r1.ok
    landed = _landed(landing)
    assert set(landed) == set(first_sops)
    some = landed[first_sops[0]]
    assert some.relative_to(landing).parts[:4] == ("site01", "2024-05-01", "dicom", first_study)
    assert some.read_bytes() == source.studies[first_study][first_sops[0]]

    r2 = fetch_from_source(source, landing, "site01", state, night="2024-05-02", fsync=False)
    assert (r2.studies_found, r2.instances_written) == (0, 0)
    assert not (landing / "site01" / "2024-05-02").exists()

    _, new_sops = source.add_study(2)
    r3 = fetch_from_source(source, landing, "site01", state, night="2024-05-03", fsync=False)
    assert r3.instances_written == 2
    assert {p.stem for p in (landing / "site01" / "2024-05-03").rglob("*.dcm")} == set(new_sops)


def test_overlapping_window_writes_nothing_twice(tmp_path: Path) -> None:
    source, landing, state = MemorySource(), tmp_path / "landing", tmp_path / "state"
    study, _ = source.add_study(2)
    fetch_from_source(source, landing, "site01", state, night="2024-05-01", fsync=False)
    source.log.append(study)  # the same study changes again (Orthanc: a second StableStudy)
    again = fetch_from_source(source, landing, "site01", state, night="2024-05-02", full=True, fsync=False)
    assert again.studies_found == 1
    assert (again.instances_written, again.instances_already_held) == (0, 2)
    assert source.retrieved == 2
    assert len(_landed(landing)) == 2


def test_failure_keeps_the_watermark_and_the_retry_fetches_only_what_is_missing(tmp_path: Path) -> None:
    source, landing, state = MemorySource(), tmp_path / "landing", tmp_path / "state"
    _, sops = source.add_study(3)
    source.broken.add(sops[1])
    failed = fetch_from_source(source, landing, "site01", state, night="2024-05-01", fsync=False)
    assert not failed.ok and failed.watermark_after is None
    assert failed.instances_written == 2
    assert "failed after 4 attempts" in failed.failures[0]
    source.broken.clear()
    retried = fetch_from_source(source, landing, "site01", state, night="2024-05-02", fsync=False)
    assert retried.ok and retried.watermark_after == "1"
    assert (retried.instances_written, retried.instances_already_held) == (1, 2)
    assert set(_landed(landing)) == set(sops)


def test_study_deleted_from_the_source_is_counted_not_failed(tmp_path: Path) -> None:
    source, state = MemorySource(), tmp_path / "state"
    study, _ = source.add_study(1)
    del source.studies[study]
    result = fetch_from_source(source, tmp_path / "landing", "site01", state, night="2024-05-01")
    assert result.ok and result.studies_vanished == 1 and result.instances_written == 0


def test_instance_whose_file_disagrees_with_the_listing_is_refused(tmp_path: Path) -> None:
    source = MemorySource()
    study, sops = source.add_study(1)
    ds = pydicom.dcmread(io.BytesIO(source.studies[study][sops[0]]))
    ds.SOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    source.studies[study][sops[0]] = buffer.getvalue()
    result = fetch_from_source(source, tmp_path / "landing", "site01", tmp_path / "state", night="2024-05-01")
    assert result.ok and not result.clean and result.watermark_after == "1"
    assert "differs from the one the source listed" in result.refused[0]
    assert not list((tmp_path / "landing").rglob("*.dcm"))


def test_unusable_instance_is_refused_once_judged_again_when_its_bytes_change(tmp_path: Path) -> None:
    """Unreadable bytes are the instance's fault: refused and recorded, the watermark moves, the same
    bytes later are skipped quietly, changed bytes are judged again, good bytes are fetched."""
    source, landing, state_dir = MemorySource(), tmp_path / "landing", tmp_path / "state"
    study, sops = source.add_study(2)
    good = source.studies[study][sops[0]]
    source.studies[study][sops[0]] = b"not DICOM at all"
    first = fetch_from_source(source, landing, "site01", state_dir, night="2024-05-01", fsync=False)
    assert first.ok and first.watermark_after == "1" and first.instances_written == 1
    assert len(first.refused) == 1 and "not a readable DICOM Part 10 file" in first.refused[0]
    assert "--retry-refused" in first.refused[0]
    with state.open_state(state_dir) as conn:
        (refused,) = state.refused_instances(conn, "site01", source.key)
    assert refused.study_key == study and refused.night == "2024-05-01"

    again = fetch_from_source(
        source, landing, "site01", state_dir, night="2024-05-02", full=True, fsync=False
    )
    assert again.clean and again.instances_refused_before == 1

    source.studies[study][sops[0]] = b"still not DICOM"
    changed = fetch_from_source(
        source, landing, "site01", state_dir, night="2024-05-03", full=True, fsync=False
    )
    assert len(changed.refused) == 1 and changed.instances_refused_before == 0

    source.studies[study][sops[0]] = good
    fixed = fetch_from_source(
        source, landing, "site01", state_dir, night="2024-05-04", full=True, fsync=False
    )
    assert fixed.clean and fixed.instances_written == 1
    assert set(_landed(landing)) == set(sops)
    with state.open_state(state_dir) as conn:
        assert state.refused_instances(conn, "site01", source.key) == []


def test_retry_refused_judges_unchanged_bytes_again_and_lists_their_study(tmp_path: Path) -> None:
    source, landing, state_dir = MemorySource(), tmp_path / "landing", tmp_path / "state"
    study, sops = source.add_study(1)
    source.studies[study][sops[0]] = b"not DICOM"
    fetch_from_source(source, landing, "site01", state_dir, night="2024-05-01", fsync=False)
    quiet = fetch_from_source(source, landing, "site01", state_dir, night="2024-05-02", fsync=False)
    assert quiet.studies_found == 0 and quiet.clean  # the watermark is past the study
    retried = fetch_from_source(
        source, landing, "site01", state_dir, night="2024-05-03", fsync=False, retry_refused=True
    )
    assert retried.studies_found == 1 and len(retried.refused) == 1  # still bad: told again
    del source.studies[study]  # deleted at the PACS: nothing is left to refuse
    gone = fetch_from_source(
        source, landing, "site01", state_dir, night="2024-05-04", fsync=False, retry_refused=True
    )
    assert gone.clean and gone.studies_vanished == 1
    with state.open_state(state_dir) as conn:
        assert state.refused_instances(conn, "site01", source.key) == []


def test_bad_site_id_fails_before_anything_is_fetched(tmp_path: Path) -> None:
    source = MemorySource()
    source.add_study(1)
    with pytest.raises(ValueError, match="site id"):
        fetch_from_source(source, tmp_path / "landing", "Site 1", tmp_path / "state")
    assert source.retrieved == 0


class SlowSource(MemorySource):
    """A PACS that takes a while per instance."""

    def retrieve(self, instance: InstanceRef) -> bytes:
        time.sleep(0.15)
        return super().retrieve(instance)


def test_a_slow_source_stops_at_the_time_budget_and_the_next_run_continues(tmp_path: Path) -> None:
    source, landing, state = SlowSource(), tmp_path / "landing", tmp_path / "state"
    studies = [source.add_study(1)[1][0] for _ in range(6)]
    first = fetch_from_source(
        source, landing, "site01", state, night="2024-05-01", fsync=False, budget_seconds=0.2
    )
    assert not first.ok and first.watermark_after is None  # nothing skipped for good
    assert 1 <= first.studies_fetched < 6
    assert "time budget of 0.2 s used up" in first.failures[-1] and "of 6 studies left" in first.failures[-1]
    rest = fetch_from_source(source, landing, "site01", state, night="2024-05-02", fsync=False)
    assert rest.ok and rest.watermark_after == "6"
    assert rest.instances_already_held == first.instances_written
    assert rest.instances_written == 6 - first.instances_written
    assert set(_landed(landing)) == set(studies)
