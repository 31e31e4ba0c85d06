"""The C-STORE receiver in-process: a real pynetdicom association stores into the landing folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import RTPlanStorage, Verification  # type: ignore[attr-defined]

from cohortpool.ingest.listener import STORAGE_SOP_CLASSES, Listener, start_listener
from ingest_testdata import make_instance


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    running = start_listener(tmp_path / "landing", "site02", port=0, night="2024-06-01", fsync=False)
    yield running
    running.stop()


def _send(listener: Listener, datasets: list[Dataset], *, calling: str = "MODALITY") -> list[int]:
    ae = AE(ae_title=calling)
    for sop_class in {*STORAGE_SOP_CLASSES, RTPlanStorage}:
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=listener.ae_title)
    assert assoc.is_established
    try:
        statuses = []
        for ds in datasets:
            status = assoc.send_c_store(ds)
            statuses.append(int(status.Status) if "Status" in status else -1)
        return statuses
    finally:
        assoc.release()


def test_received_instances_land_by_uid_with_identical_data_sets(listener: Listener, tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    sent = [
        make_instance(study_uid=study, series_uid=series, modality=m, number=i, implicit=(i == 1))
        for i, m in enumerate(["CT", "CT", "MR", "DX", "CR", "OT"])
    ]
    assert _send(listener, sent) == [0] * len(sent)
    night = tmp_path / "landing" / "site02" / "2024-06-01" / "dicom" / study / series
    for ds in sent:
        stored = pydicom.dcmread(night / f"{ds.SOPInstanceUID}.dcm")
        assert stored == ds  # every element, pixels included (the association may change the encoding)
        assert stored.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert listener.stats.stored == len(sent) and listener.stats.rejected == 0
    assert not [p for p in (tmp_path / "landing").rglob("*") if p.name.startswith(".")]


def test_a_resent_instance_is_stored_once(listener: Listener, tmp_path: Path) -> None:
    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), modality="CT", number=1)
    assert _send(listener, [ds, ds]) == [0, 0]
    assert len(list((tmp_path / "landing").rglob("*.dcm"))) == 1


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_uid_that_would_escape_the_landing_folder_is_rejected(listener: Listener, tmp_path: Path) -> None:
    ds = make_instance(study_uid="1.2.3", series_uid="1.2.3.4", modality="CT", number=1)
    ds.StudyInstanceUID = "../../../outside"
    assert _send(listener, [ds]) == [0xC000]
    assert listener.stats.rejected == 1
    assert not list(tmp_path.rglob("*.dcm"))


def test_sop_classes_outside_the_project_are_not_accepted(listener: Listener) -> None:
    ds = Dataset()
    ds.SOPClassUID = RTPlanStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    with pytest.raises(ValueError, match="No presentation context"):
        _send(listener, [ds])


def test_only_allowed_calling_ae_titles_may_store(tmp_path: Path) -> None:
    running = start_listener(tmp_path / "l", "site02", port=0, allowed_aets=["PACS"], fsync=False)
    try:
        ae = AE(ae_title="INTRUDER")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", running.port, ae_title=running.ae_title)
        assert assoc.is_rejected
    finally:
        running.stop()


def test_bad_arguments_fail_before_listening(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="AE title"):
        start_listener(tmp_path, "site01", port=0, ae_title="A" * 17)
    with pytest.raises(ValueError, match="site id"):
        start_listener(tmp_path, "../x", port=0)
