"""Splitting WADO-RS multipart/related answers byte for byte."""

from __future__ import annotations

import io
import random

import pytest
from pydicom.uid import generate_uid

from cohortpool.ingest.dicomweb import split_multipart
from cohortpool.ingest.errors import SourceError
from ingest_testdata import make_instance

BOUNDARY = "7d1e4f2a-boundary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def _multipart(parts: list[bytes], kind: str = "application/dicom") -> bytes:
    body = b""
    for part in parts:
        body += f"--{BOUNDARY}\r\nContent-Type: {kind}\r\nContent-Length: {len(part)}\r\n\r\n".encode()
        body += part + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def _dicom_bytes() -> bytes:
    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), modality="MR", number=3)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_parts_come_back_byte_for_byte_even_with_cr_lf_and_dashes() -> None:
    rng = random.Random(7)
    tricky = [b"\r", b"\n", b"\r\n", b"--", b"\r\n--", f"\r\n--{BOUNDARY}x".encode(), b"\x00", b"\xff"]
    parts = [_dicom_bytes()]
    for _ in range(40):
        parts.append(b"".join(rng.choice(tricky) for _ in range(rng.randint(0, 40))) + rng.randbytes(200))
    parts.append(b"")
    assert split_multipart(CONTENT_TYPE, _multipart(parts), "test") == parts


def test_a_non_multipart_answer_names_the_url() -> None:
    with pytest.raises(SourceError, match=r"http://pacs/x answered application/dicom\+json, not multipart"):
        split_multipart("application/dicom+json", b"[]", "http://pacs/x")


def test_a_part_that_is_not_dicom_is_refused() -> None:
    body = _multipart([b"<html>login</html>"], kind="text/html")
    with pytest.raises(SourceError, match="a part is text/html"):
        split_multipart(CONTENT_TYPE, body, "http://pacs/x")
