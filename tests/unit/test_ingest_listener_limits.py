"""The C-STORE receiver's limits: maximum instance size, per-association counts and bytes, real associations.

A pynetdicom sender in the test process pushes to a listener started in-process; the listener's
temporary files go to its private spool folder, which a sampler thread watches while an instance
arrives, so "the partial file stops growing at the limit" is measured, not assumed.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.ingest.association import AssociationSummary, ListenerLimits
from cohortpool.ingest.listener import (
    MAX_PDU_BYTES,
    STORAGE_SOP_CLASSES,
    Listener,
    private_spool,
    start_listener,
)
from ingest_testdata import make_instance

MIB = 1 << 20


@pytest.fixture
def landing(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "landing"
    with private_spool(folder):
        yield folder


def _start(landing: Path, summaries: list[AssociationSummary], **limits: int) -> Listener:
    return start_listener(
        landing,
        "site02",
        port=0,
        night="2024-06-01",
        fsync=False,
        limits=ListenerLimits(**limits),
        on_association=summaries.append,
    )


def _send(listener: Listener, datasets: list[Dataset]) -> list[Dataset]:
    """C-STORE each data set over one association; the response statuses."""
    ae = AE(ae_title="MODALITY")
    for sop_class in STORAGE_SOP_CLASSES:
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=listener.ae_title)
    assert assoc.is_established
    try:
        return [assoc.send_c_store(ds) for ds in datasets]
    finally:
        assoc.release()


def _instance(size: int) -> Dataset:
    return make_instance(
        study_uid=generate_uid(), series_uid=generate_uid(), modality="CT", number=1, size=size
    )


def _stored(landing: Path) -> set[str]:
    return {p.stem for p in landing.glob("site02/*/dicom/*/*/*.dcm")}


def _wait_for(summaries: list[AssociationSummary], n: int) -> None:
    """Association summaries are reported from the association's thread as its connection closes."""
    done = threading.Event()
    for _ in range(200):
        if len(summaries) >= n:
            return
        done.wait(0.05)
    raise AssertionError(f"{len(summaries)} association summaries, expected {n}")


class _SpoolSampler(threading.Thread):
    """The largest total size of the files in the spool folder, sampled every few milliseconds."""

    def __init__(self, spool: Path):
        super().__init__(daemon=True)
        self.spool, self.peak, self.stop = spool, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for path in list(self.spool.glob("*")):
                with contextlib.suppress(FileNotFoundError):  # placed or removed between glob and stat
                    total += path.stat().st_size
            self.peak = max(self.peak, total)
            self.stop.wait(0.002)


def test_an_instance_over_the_maximum_size_is_refused_stops_growing_and_leaves_nothing(landing: Path) -> None:
    summaries: list[AssociationSummary] = []
    listener = _start(landing, summaries, max_instance_bytes=1 * MIB)
    spool = next(landing.glob(".listen-spool-*"))
    sampler = _SpoolSampler(spool)
    sampler.start()
    big, small = _instance(2048), _instance(64)  # 8 MiB of pixels, then 8 KiB
    try:
        statuses = _send(listener, [big, small])
    finally:
        sampler.stop.set()
        sampler.join()
        listener.stop()
    assert [int(s.Status) for s in statuses] == [0xA700, 0x0000]
    assert "maximum" in str(statuses[0].ErrorComment)  # what the PACS operator reads in the sender's log
    # the big one never reached the landing folder and its partial file is gone; the next one landed
    assert _stored(landing) == {str(small.SOPInstanceUID)}
    assert list(spool.iterdir()) == []
    # the partial file stopped growing at the limit (plus at most the PDU that crossed it), not at 8 MiB
    assert 0 < sampler.peak <= 1 * MIB + MAX_PDU_BYTES, sampler.peak
    _wait_for(summaries, 1)
    (summary,) = summaries
    assert (summary.stored, summary.refused, summary.ended) == (1, 1, "released")
    assert listener.stats.rejected == 1 and listener.stats.stored == 1


def test_an_association_past_its_instance_count_is_refused_and_a_new_one_may_store(landing: Path) -> None:
    summaries: list[AssociationSummary] = []
    listener = _start(landing, summaries, max_instances=2)
    try:
        first = [_instance(16) for _ in range(3)]
        assert [int(s.Status) for s in _send(listener, first)] == [0, 0, 0xA700]
        later = _instance(16)
        assert [int(s.Status) for s in _send(listener, [later])] == [0]
    finally:
        listener.stop()
    assert _stored(landing) == {str(ds.SOPInstanceUID) for ds in [*first[:2], later]}
    _wait_for(summaries, 2)
    assert sorted((s.number, s.stored, s.refused) for s in summaries) == [(1, 2, 1), (2, 1, 0)]
    assert listener.stats.associations == 2


def test_an_association_past_its_bytes_is_refused(landing: Path) -> None:
    summaries: list[AssociationSummary] = []
    listener = _start(landing, summaries, max_bytes=20_000)  # two 8 KiB-pixel instances fit, not three
    try:
        statuses = _send(listener, [_instance(64) for _ in range(3)])
    finally:
        listener.stop()
    assert [int(s.Status) for s in statuses] == [0, 0, 0xA700]
    assert "association" in str(statuses[2].ErrorComment)
    _wait_for(summaries, 1)
    assert (summaries[0].stored, summaries[0].refused) == (2, 1)
    assert 16_000 < summaries[0].bytes <= 20_000


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_instance_bytes must be at least 1"):
        ListenerLimits(max_instance_bytes=0)


def test_the_association_line_has_counts_and_no_names() -> None:
    line = AssociationSummary(3, stored=12, refused=0, bytes=6_300_000, seconds=2.14, ended="released").line()
    assert line == "association 3 released after 2.1 s: 12 stored (6.3 MB)"
    refused = AssociationSummary(4, stored=1, refused=2, bytes=10, seconds=0.01, ended="aborted").line()
    assert refused.endswith(", 2 refused") and refused.startswith("association 4 aborted")


def test_the_private_spool_is_removed_and_one_left_by_a_dead_listener_is_swept(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    dead = landing / ".listen-spool-999999999"  # above any pid_max: no such process
    dead.mkdir()
    (dead / "tmpabc.dcm").write_bytes(b"half an instance")
    with private_spool(landing) as spool:
        assert not dead.exists()
        assert spool.stat().st_mode & 0o777 == 0o700
        assert tempfile.gettempdir() == str(spool)
    assert not spool.exists()
    assert tempfile.gettempdir() != str(spool)


def test_the_listen_help_names_the_limits_defaults() -> None:
    # the CLI names them in its help without importing cohortpool.ingest (every other verb stays fast)
    result = CliRunner().invoke(app, ["listen", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    defaults = ListenerLimits()
    shown = {name: int(v) for name, v in re.findall(r"--(max-[a-z-]+)\s.*?\(default (\d+)\)", result.output)}
    assert shown == {
        "max-instance-mb": defaults.max_instance_bytes // MIB,
        "max-association-instances": defaults.max_instances,
        "max-association-mb": defaults.max_bytes // MIB,
    }


def test_a_sender_that_announces_a_data_set_and_leaves_leaves_nothing_in_the_spool(landing: Path) -> None:
    """The C-STORE command says a data set follows; the sender releases without sending it. The file
    pynetdicom opened for it stayed in the spool until the listener stopped (months, for a service)."""
    import io

    from pydicom.uid import CTImageStorage
    from pynetdicom.dimse_primitives import C_STORE

    summaries: list[AssociationSummary] = []
    listener = _start(landing, summaries)
    try:
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
        assoc = ae.associate("127.0.0.1", listener.port, ae_title=listener.ae_title)
        assert assoc.is_established
        request = C_STORE()
        request.MessageID, request.AffectedSOPClassUID = 1, CTImageStorage
        request.AffectedSOPInstanceUID, request.Priority = generate_uid(), 2
        request.DataSet = io.BytesIO(b"")  # announced, never sent
        assoc.dimse.send_msg(request, assoc.accepted_contexts[0].context_id)
        threading.Event().wait(0.3)  # the listener has the command and opened its file
        assoc.abort()
        _wait_for(summaries, 1)
    finally:
        listener.stop()
    spool = Path(tempfile.gettempdir())
    assert spool.name.startswith(".listen-spool-") and list(spool.iterdir()) == []
    assert _stored(landing) == set()


@pytest.mark.parametrize(
    "bad", [["--night", "2024-02-30"], ["--ae-title", "ABCDEFGHIJKLMNOPQ"]], ids=["night", "ae-title"]
)
def test_bad_usage_of_listen_leaves_no_landing_folder(tmp_path: Path, bad: list[str]) -> None:
    """Exit 2 changes nothing: the landing folder (and its spool) was made before the night and the AE
    title were checked."""
    config = tmp_path / "cohortpool.yaml"
    config.write_text("sites:\n  - site_id: site03\n", encoding="utf-8")
    landing = tmp_path / "land"
    result = CliRunner().invoke(
        app,
        ["listen", "--port", "0", "--landing", str(landing), "--site", "site03", *bad],
        env={"COHORTPOOL_CONFIG": str(config)},
    )
    assert result.exit_code == 2, result.output
    assert "is not declared" not in result.output and (
        "night" in result.output or "AE title" in result.output
    )
    assert not landing.exists()
