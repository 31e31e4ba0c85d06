"""pydicom's warnings and log records repeat header values (an unknown character set's name, an invalid
UID, an over-long name) with its source paths: none of them leaves a de-identification run; what is
worth saying (an unknown character set) is counted in the night's summary without the value.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from cohortpool.contract.quiet import UNKNOWN_CHARACTER_SET
from cohortpool.deid import deidentify_tree
from cohortpool.features import instance_record

SECRET = b"b5c7f931cd15290b9f3cf1ac48694910d138eb3cee8b65f5ab52cf7315d4899d"
NIGHT = "2024-05-06"
CT = "1.2.840.10008.5.1.4.1.1.2"
ROOT = "1.2.826.0.1.3680043.9.8888."
TOKEN = "ZZCHARSETLEAK"


def _ct(n: int, ts: str) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = f"{ROOT}3.{n}"
    ds.file_meta.TransferSyntaxUID = ts
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = f"{ROOT}3.{n}"
    ds.StudyInstanceUID = f"{ROOT}1"
    ds.SeriesInstanceUID = f"{ROOT}2.{n}"
    ds.Modality = "CT"
    ds.BurnedInAnnotation = "NO"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the values below are meant to be invalid
        ds.SpecificCharacterSet = TOKEN
        ds.PatientID = f"{TOKEN}{n}"
        ds.PatientName = f"{TOKEN}^" + "MOORE" * 20  # a component past 64 characters
        ds.StudyDescription = f"{TOKEN} " * 10  # past LO's 64
        ds.FrameOfReferenceUID = f"1.2.840.10008/../{TOKEN}"  # not a UID
        ds.PixelData = b"\x01\x00" * 4
        buffer = io.BytesIO()
        ds.save_as(buffer, implicit_vr=ts == ImplicitVRLittleEndian, enforce_file_format=True)
    return buffer.getvalue()


def test_nothing_of_pydicom_is_said_and_the_character_set_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "fast.dcm").write_bytes(_ct(1, ExplicitVRLittleEndian))
    (drop / "pydicom.dcm").write_bytes(_ct(2, ImplicitVRLittleEndian))
    caplog.set_level(logging.DEBUG)
    caplog.clear()  # what building the files logged
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = deidentify_tree(
            drop, tmp_path / "out", tmp_path / "vault", "site01", SECRET, NIGHT, record_hook=instance_record
        )
    assert result.counts["deidentified"] == 2, result.rows
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.name.startswith("pydicom")] == []
    summary = (tmp_path / "vault" / "ledger" / f"{NIGHT}.summary.csv").read_text(encoding="utf-8")
    assert TOKEN not in summary
    rows = list(csv.DictReader(io.StringIO(summary)))
    noted = [r for r in rows if r["what"] == UNKNOWN_CHARACTER_SET]
    assert [(r["keyword"], r["tag"], r["count"]) for r in noted] == [
        ("SpecificCharacterSet", "(0008,0005)", "2")
    ]
    # the unknown term is also removed from the output (contract.dicom_terms: not a character set the standard
    # defines), counted as a removal besides the note
    assert result.removed["SpecificCharacterSet"] == 2
    assert all(TOKEN.encode() not in p.read_bytes() for p in (tmp_path / "out").rglob("*.dcm"))


def test_the_logger_and_the_warning_filters_are_given_back(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.dcm").write_bytes(_ct(1, ExplicitVRLittleEndian))
    filters = list(warnings.filters)
    deidentify_tree(drop, tmp_path / "out", tmp_path / "vault", "site01", SECRET, NIGHT)
    assert not logging.getLogger("pydicom").disabled
    assert warnings.filters == filters


def test_quiet_sections_in_threads_keep_their_own_warnings_and_give_everything_back() -> None:
    """Sites are de-identified in threads: sections that overlap used to save each other's settings and
    leave pydicom's logger off for good (seen in the full suite)."""
    import threading

    from cohortpool.contract.quiet import pydicom_quiet

    logger = logging.getLogger("pydicom")
    filters, show = list(warnings.filters), warnings.showwarning
    entered, leave = threading.Barrier(4), threading.Barrier(4)
    caught: dict[int, list[str]] = {}

    def section(n: int) -> None:
        with pydicom_quiet() as mine:
            entered.wait()
            warnings.warn(f"thread {n}", UserWarning, stacklevel=1)
            leave.wait() if n % 2 else None  # half leave at once, half after
            caught[n] = [str(w.message) for w in mine]
        if not n % 2:
            leave.wait()

    threads = [threading.Thread(target=section, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert caught == {n: [f"thread {n}"] for n in range(4)}
    assert not logger.disabled and warnings.filters == filters and warnings.showwarning is show
